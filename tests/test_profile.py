"""`diver-lite profile`: one command, every plan in its own process, a report a user can read; bad plans and
folders get one-line errors, and a plan that fails is reported without stopping the others."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from diver_lite.cli.main import cli

from conftest import assert_one_line_error


# The module fixture (profiled) is built once: every test here runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("profiled")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("profile") / "p"
    res = CliRunner().invoke(cli, ["profile", "-o", str(out), "--model", str(tiny_model_dir), "--device", "cpu",
                                   "--images", "3", "--batch-size", "2", "--t-init", "2", "--steps", "3",
                                   "--plans", "bf16+offload-stream,fp32+offload-model,fp32+offload-sequential"])
    assert res.exit_code == 0, res.output
    return out, res.output, json.loads((out / "profile.json").read_text())


def test_profile_reports_memory_time_estimate_and_fidelity_per_plan(profiled):
    out, output, report = profiled
    rows = {r["plan"]["label"]: r for r in report["plans"]}
    assert list(rows) == ["fp32", "bf16+offload-stream", "fp32+offload-model", "fp32+offload-sequential"]
    ref, stream, model = rows["fp32"], rows["bf16+offload-stream"], rows["fp32+offload-model"]
    for r in (ref, stream, model):
        assert r["peak"]["cpu_rss_mb"] > 100 and r["time_per_step_s"] > 0 and r["time_per_image_s"] > 0
        assert r["estimate_mb"]["total"] > 0 and abs(r["estimate_error"]) < 0.5
    assert ref["fidelity"]["latent_rel_l2"] == 0 and ref["peak_ratio"] == 1
    assert model["fidelity"]["latent_rel_l2"] == 0                        # offloading is exact
    assert 0 < stream["fidelity"]["latent_rel_l2"] < 0.05 and stream["fidelity"]["psnr_db"] > 30
    assert "needs CUDA" in rows["fp32+offload-sequential"]["error"]        # reported, the others still ran
    assert "| bf16+offload-stream |" in (out / "profile.md").read_text() and "| bf16+offload-stream |" in output
    from PIL import Image

    from diver_lite.profiling.profile import profile_chart

    png = np.asarray(Image.open(out / "profile.png").convert("RGB"))
    assert png.shape[1] >= 760 and (png < 250).any(axis=2).mean() > 0.02   # drawn on, not blank
    np.testing.assert_array_equal(png, profile_chart(report))             # the chart of the report's numbers
    bigger = json.loads(json.dumps(report))                               # a plan's peak doubled moves its bar
    bigger["plans"][1]["peak_ratio"] = 2 * bigger["plans"][1]["peak_ratio"]
    assert not np.array_equal(profile_chart(bigger), png)


def test_profile_runs_the_same_images_for_every_plan(profiled):
    out, _, _ = profiled
    with np.load(out / "plans" / "plan0.npz") as a, np.load(out / "plans" / "plan2.npz") as b:
        np.testing.assert_array_equal(a["images"], b["images"])


@pytest.mark.parametrize("args,code,needle", [
    (["--plans", "bf16+turbo"], 2, "unknown plan part 'turbo'"),
    (["--plans", "int4"], 2, "unknown precision 'int4'"),
    (["--plans", "int8+offload-stream"], 2, "cannot be combined"),
    (["--plans", ","], 2, "--plans is empty"),
    (["--images", "0"], 2, "Invalid value for '--images'"),
])
def test_profile_refuses_bad_options_in_one_line(tmp_path, tiny_model_dir, args, code, needle):
    res = CliRunner().invoke(cli, ["profile", "-o", str(tmp_path / "p"), "--model", str(tiny_model_dir),
                                   "--device", "cpu"] + args)
    if needle.startswith("Invalid value"):
        assert res.exit_code == 2 and needle in res.output
    else:
        assert_one_line_error(res, code, needle)


def test_profile_refuses_an_occupied_folder_and_a_missing_model(tmp_path, tiny_model_dir):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "x").write_text("mine")
    res = CliRunner().invoke(cli, ["profile", "-o", str(tmp_path / "p"), "--model", str(tiny_model_dir),
                                   "--device", "cpu", "--plans", "bf16"])
    assert_one_line_error(res, 2, "is not empty")
    assert (tmp_path / "p" / "x").read_text() == "mine"
    res = CliRunner().invoke(cli, ["profile", "-o", str(tmp_path / "q"), "--model", str(tmp_path / "nope"),
                                   "--device", "cpu", "--plans", "bf16"])
    assert_one_line_error(res, 2, "does not exist")


def test_profile_reads_a_distilled_set_as_input(tmp_path, tiny_model_dir, dm_file):
    res = CliRunner().invoke(cli, ["profile", str(dm_file), "-o", str(tmp_path / "p"), "--model",
                                   str(tiny_model_dir), "--device", "cpu", "--images", "2", "--t-init", "1",
                                   "--steps", "2", "--plans", "bf16"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert report["images"] == 2 and report["plans"][1]["fidelity"]["psnr_db"] > 30
