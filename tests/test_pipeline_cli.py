"""`diver-lite recover` end to end on the tiny model: outputs, layouts, resume, and one-line errors."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from diver_lite.cli.main import cli
from conftest import assert_one_line_error, make_images
from diver_lite.core.config import RecoverConfig
from diver_lite.layouts import read_set
from diver_lite.pipeline.run import recover
def run_cli(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def test_help_teaches_with_an_example():
    result = run_cli("recover", "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "--guidance-window" in result.output and "--resume" in result.output


def test_cli_end_to_end_on_a_model_folder(tmp_path, dm_file, tiny_model_dir):
    out = tmp_path / "out"
    result = run_cli("recover", dm_file, "-o", out, "--model", tiny_model_dir, "--batch-size", 4, "-q")
    assert result.exit_code == 0, result.output
    assert "Recovered 6 images" in result.output
    recovered = read_set(out / dm_file.name)
    original = read_set(dm_file)
    assert recovered.layout == "dm" and recovered.images.shape == original.images.shape
    assert np.array_equal(recovered.labels, original.labels)
    assert not np.allclose(recovered.images, original.images)
    assert sorted(p.relative_to(out / "png").as_posix() for p in (out / "png").rglob("*.png")) == [
        "0/000000.png", "0/000003.png", "1/000001.png", "1/000004.png", "2/000002.png", "2/000005.png"]
    assert (out / "grid.png").is_file() and (out / "report.md").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["device"].startswith("torch cpu") and report["provider"] == "torch-cpu"
    assert report["config"]["guidance_window"] == [25, 40]      # a real model: the paper's settings
    assert set(report["timings_s"]) >= {"read", "load", "encode", "sample", "decode", "write", "total", "per_image"}
    assert report["peak_memory"]["cpu_peak_rss_mb"] > 0 and report["versions"]["diffusers"]


def test_the_report_says_how_far_recovery_moved_each_image(tmp_path, dm_file, tiny_model_dir):
    out = tmp_path / "out"
    result = run_cli("recover", dm_file, "-o", out, "--model", tiny_model_dir, "-q")
    assert result.exit_code == 0, result.output
    before, after = read_set(dm_file), read_set(out / dm_file.name)
    from diver_lite.core.prepare import to_unit

    b, a = (np.clip(to_unit(d.images, d.pixel_space), 0, 1) for d in (before, after))
    psnr = 10 * np.log10(1 / ((a - b) ** 2).reshape(len(b), -1).mean(axis=1))
    change = json.loads((out / "report.json").read_text())["output"]["change"]
    assert change["psnr_db_mean"] == pytest.approx(psnr.mean(), abs=0.01)
    assert change["psnr_db_min"] == pytest.approx(psnr.min(), abs=0.01)
    assert change["most_changed"][0] == int(psnr.argmin()) and len(change["most_changed"]) == 5
    md = (out / "report.md").read_text()
    assert "How far recovery moved the images" in md and f"mean {change['psnr_db_mean']} dB" in md
    assert f"{change['psnr_db_mean']} dB from their inputs on average" in result.output


def test_an_image_recovery_left_unchanged_reads_as_a_high_psnr_not_infinity():
    from diver_lite.pipeline.report import change_summary

    x = make_images(4, seed=1)
    moved = x.copy()
    moved[2] += 0.5
    change = change_summary(x, moved, "imagenet", most=2)
    assert change["most_changed"][0] == 2 and change["psnr_db_max"] == 200.0   # json-safe, not inf
    assert change["psnr_db_min"] < 30
    assert change_summary(x, moved, "imagenet", most=2, chunk=3) == change   # a large set is read in pieces


@pytest.mark.parametrize("layout", ["mtt", "ncfm", "folder", "npz"])
def test_recovered_set_keeps_the_input_layout(tmp_path, tiny_models, layout):
    from test_data import _write_layout

    src = _write_layout(tmp_path, layout)
    report = recover(src, tmp_path / "out", RecoverConfig(steps=4, t_init=3), model=tiny_models, device="cpu")
    before, after = read_set(src), read_set(report["output"]["set"])
    assert after.layout == before.layout and after.images.shape == before.images.shape
    assert np.array_equal(after.labels, before.labels)  # soft labels (mtt) kept as they were


def test_interrupted_run_resumes_to_the_same_result(tmp_path, tiny_models):
    src = tmp_path / "set.pt"
    torch.save({"data": [[torch.from_numpy(make_images(10, seed=4)), torch.arange(10) % 3]], "res": 32}, src)
    config = RecoverConfig(sampler="ddpm", batch_size=3)
    full = recover(src, tmp_path / "full", config, model=tiny_models, device="cpu")

    def stop_after_two_batches(p):
        if p.images_this_run >= 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        recover(src, tmp_path / "cut", config, model=tiny_models, device="cpu", progress=stop_after_two_batches)
    assert not (tmp_path / "cut" / "set.pt").exists()  # no half-written set
    resumed = recover(src, tmp_path / "cut", config, model=tiny_models, device="cpu", resume=True)
    assert (resumed["images_before_resume"], resumed["images_this_run"]) == (6, 4)
    a = read_set(full["output"]["set"]).images
    b = read_set(resumed["output"]["set"]).images
    assert np.array_equal(a, b)


def test_bad_inputs_give_one_line_and_exit_2_with_nothing_written(tmp_path, dm_file, tiny_model_dir):
    out = tmp_path / "out"
    assert_one_line_error(run_cli("recover", tmp_path / "missing.pt", "-o", out, "--model", tiny_model_dir),
                          2, "does not exist")
    assert_one_line_error(run_cli("recover", dm_file, "-o", out, "--model", tiny_model_dir, "--subset",
                                  "imagenot"), 2, "unknown subset")
    (tmp_path / "not_a_model").mkdir()
    assert_one_line_error(run_cli("recover", dm_file, "-o", out, "--model", tmp_path / "not_a_model"), 2,
                          "incomplete")
    assert_one_line_error(run_cli("recover", dm_file, "-o", out, "--model", tiny_model_dir,
                                  "--guidance-window", "3:60"), 2, "guidance window")
    assert_one_line_error(run_cli("recover", dm_file, "-o", out, "--model", "tiny-random", "--t-init", "60"),
                          2, "t_init=60")
    assert not out.exists()


def test_existing_output_needs_resume_or_overwrite(tmp_path, dm_file):
    out = tmp_path / "out"
    assert run_cli("recover", dm_file, "-o", out, "--model", "tiny-random", "-q").exit_code == 0
    assert_one_line_error(run_cli("recover", dm_file, "-o", out, "--model", "tiny-random"), 2, "--resume")
    assert_one_line_error(run_cli("recover", dm_file, "-o", out, "--model", "tiny-random", "--resume",
                                  "--seed", "3"), 2, "different config")
    result = run_cli("recover", dm_file, "-o", out, "--model", "tiny-random", "--resume", "-q")
    assert result.exit_code == 0 and "(0 this run" in result.output
    assert run_cli("recover", dm_file, "-o", out, "--model", "tiny-random", "--overwrite", "-q").exit_code == 0


def test_npz_float_pixel_space_is_detected(tmp_path, tiny_models):
    src = tmp_path / "f.npz"
    np.savez(src, images=np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32),
             labels=np.array([0, 1]))
    assert read_set(src).pixel_space == "symmetric"
    report = recover(src, tmp_path / "o", RecoverConfig(steps=2, t_init=1), model=tiny_models, device="cpu")
    out = np.load(report["output"]["set"])
    assert out["images"].dtype == np.float32 and out["images"].shape == (2, 16, 16, 3)


def test_the_python_api_is_the_cli(tmp_path, dm_file):
    """from diver_lite import recover, RecoverConfig: what a notebook calls, with the CLI's result."""
    from diver_lite import RecoverConfig as Config
    from diver_lite import recover as api_recover
    # For a real model the CLI runs the paper's table: from_preset(None, ...) is the same settings in Python.
    report = api_recover(dm_file, tmp_path / "api", Config.from_preset(None, 1, t_init=2, steps=3),
                         model="tiny-random", device="cpu", write_pngs=False)
    assert report["merged"] and report["input"]["images"] == 6
    assert run_cli("recover", dm_file, "-o", tmp_path / "cli", "--model", "tiny-random", "--t-init", "2", "--steps",
                   "3", "--device", "cpu", "--no-png", "-q").exit_code == 0
    a = torch.load(tmp_path / "api" / "dm_set.pt", weights_only=True)["data"][0][0]
    b = torch.load(tmp_path / "cli" / "dm_set.pt", weights_only=True)["data"][0][0]
    assert torch.equal(a, b)


def test_the_option_objects_are_the_keywords(tmp_path, dm_file):
    """recover(path, out, config, EngineSpec(...), RunOptions(...)) is the keyword call; unknown keywords and a mix
    of both are refused."""
    from diver_lite import EngineSpec, RecoverConfig, RunOptions, RuntimePlan
    from diver_lite import recover as api_recover

    config = RecoverConfig(t_init=2, steps=3)
    api_recover(dm_file, tmp_path / "a", config, EngineSpec(model="tiny-random", device="cpu",
                plan=RuntimePlan("bf16")), RunOptions(write_pngs=False))
    api_recover(dm_file, tmp_path / "b", config, model="tiny-random", device="cpu", precision="bf16",
                write_pngs=False)
    a = torch.load(tmp_path / "a" / "dm_set.pt", weights_only=True)["data"][0][0]
    b = torch.load(tmp_path / "b" / "dm_set.pt", weights_only=True)["data"][0][0]
    assert torch.equal(a, b)
    with pytest.raises(TypeError, match="unknown options"):
        api_recover(dm_file, tmp_path / "c", config, modle="tiny-random")
    with pytest.raises(TypeError, match="not both"):
        api_recover(dm_file, tmp_path / "d", config, EngineSpec(), model="tiny-random")


def test_mps_is_refused_in_one_line_where_torch_has_no_mps(tmp_path, dm_file):
    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS: test_recovery_on_mps covers it")
    result = run_cli("recover", dm_file, "-o", tmp_path / "o", "--model", "tiny-random", "--device", "mps")
    assert_one_line_error(result, 2, "--device mps needs Apple silicon")


@pytest.mark.skipif(not torch.backends.mps.is_available(), reason="needs Apple silicon with torch's MPS backend")
def test_recovery_on_mps_matches_the_cpu(tmp_path, dm_file):
    cfg = RecoverConfig(t_init=2, steps=3)
    a = recover(dm_file, tmp_path / "mps", cfg, model="tiny-random", device="mps", write_pngs=False)
    b = recover(dm_file, tmp_path / "cpu", cfg, model="tiny-random", device="cpu", write_pngs=False)
    x = torch.load(a["output"]["set"], weights_only=True)["data"][0][0]
    y = torch.load(b["output"]["set"], weights_only=True)["data"][0][0]
    torch.testing.assert_close(x, y, atol=1e-3, rtol=1e-3)


def test_method_presets_follow_the_table_and_yield_to_options_given(tmp_path, dm_file, tiny_model_dir, monkeypatch):
    """--method takes its table's settings (the Fashion-MNIST one holds more than t_init/K); an option written on
    the command line wins over the preset, a default does not."""
    from diver_lite.core import config as config_mod

    monkeypatch.setitem(config_mod.FASHION_MNIST_PRESETS, "dm", {1: {"t_init": 3, "steps": 4, "guidance_scale": 0.25}})

    def used(name, *extra):
        result = run_cli("recover", dm_file, "-o", tmp_path / name, "--model", tiny_model_dir, "--method", "dm",
                         "--no-png", "-q", *extra)
        assert result.exit_code == 0, result.output
        c = json.loads((tmp_path / name / "report.json").read_text())["config"]
        return c["t_init"], c["steps"], c["guidance_scale"]

    assert used("fm", "--presets", "fashion-mnist") == (3, 4, 0.25)
    assert used("fm_lambda", "--presets", "fashion-mnist", "--guidance-scale", "1") == (3, 4, 1.0)
    assert used("fm_steps", "--presets", "fashion-mnist", "--steps", "2") == (3, 2, 0.25)
    assert used("auto") == (25, 50, 0.1)                     # --model given: auto is the paper's table
    assert used("predd", "--presets", "predd") == (10, 15, 0.5)
    assert used("paper_lambda", "--guidance-scale", "0.3") == (25, 50, 0.3)
    assert RecoverConfig.from_preset("edf", 1, "fashion-mnist") == RecoverConfig.from_preset("edf", 1, "predd")


def test_a_real_model_without_method_runs_the_papers_settings_and_the_embedded_prior_keeps_its_own(
        tmp_path, dm_file, tiny_model_dir):
    """The paper's settings are the default for any model given with --model; the embedded prior without --method
    keeps the defaults its recorded results were made with."""
    def config(name, *extra):
        result = run_cli("recover", dm_file, "-o", tmp_path / name, "--no-png", "-q", *extra)
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / name / "report.json").read_text())["config"]

    real = config("real", "--model", tiny_model_dir)
    assert (real["t_init"], real["effective_steps"], real["guidance_window"], real["guidance_scale"],
            real["guidance_target"], real["label_phase"]) == (25, 50, [25, 40], 0.1, "xt", "all")
    mine = config("mine", "--model", tiny_model_dir, "--guidance-target", "x0", "--t-init", "20")
    assert (mine["t_init"], mine["guidance_target"], mine["guidance_scale"]) == (20, "x0", 0.1)
    embedded = config("embedded")
    assert (embedded["t_init"], embedded["effective_steps"], embedded["guidance_target"]) == (10, 15, "x0")


def test_a_preset_guidance_window_gives_way_when_the_steps_change(monkeypatch):
    from diver_lite.core import config as config_mod

    monkeypatch.setitem(config_mod.FASHION_MNIST_PRESETS, "mtt", {1: {"t_init": 10, "steps": 10,
                                                                       "guidance_window": (0, 9)}})
    assert RecoverConfig.from_preset("mtt", 1, "fashion-mnist").window == (0, 9)
    assert RecoverConfig.from_preset("mtt", 1, "fashion-mnist", steps=5).window == (0, 1)   # K=5: the default
    assert RecoverConfig.from_preset("mtt", 1, "fashion-mnist", steps=10, align=False).window == (0, 9)
