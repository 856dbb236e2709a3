"""Hardening, round two: one test per class of the hostile-user report. Nothing a user owns is lost; no input ends
in a traceback; errors say what is wrong; partial outputs never pass for whole ones."""

import gzip
import json
import os
import stat

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import assert_one_line_error, make_images
from diver_lite.cli.main import cli
from diver_lite.layouts import read_set
from diver_lite.models.tiny import build_tiny_models
from diver_lite.models.save import save_models

TINY = ["--model", "tiny-random", "--t-init", "2", "--steps", "3", "--device", "cpu", "-q", "--no-png"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ data loss

def test_overwrite_never_replaces_the_input_or_a_folder_diver_lite_did_not_write(tmp_path, dm_file):
    proj = tmp_path / "proj"
    proj.mkdir()
    dm_file = dm_file.rename(proj / "myset.pt")
    before = snapshot(proj)
    assert_one_line_error(run("recover", dm_file, "-o", proj, "--overwrite", *TINY), 2, "the input")
    mtt = tmp_path / "mtt"
    mtt.mkdir()
    torch.save(torch.from_numpy(make_images(2)), mtt / "images_best.pt")
    torch.save(torch.tensor([0, 1]), mtt / "labels_best.pt")
    assert_one_line_error(run("recover", mtt, "-o", mtt, "--overwrite", *TINY), 2, "the input")
    assert_one_line_error(run("recover", mtt, "-o", mtt / "out", *TINY), 2, "lies inside the input")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "mine", "--overwrite", *TINY), 2,
                          "did not write")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    assert snapshot(proj) == before and not (mtt / "out").exists()
    # An earlier diver-lite run is what --overwrite replaces.
    assert run("recover", dm_file, "-o", tmp_path / "r", *TINY).exit_code == 0
    assert run("recover", dm_file, "-o", tmp_path / "r", "--overwrite", *TINY).exit_code == 0


def test_npz_arrays_named_like_numpy_keywords_survive(tmp_path):
    src = tmp_path / "kw.npz"
    with open(src, "wb") as f:        # np.savez itself cannot write an array named 'file'
        from diver_lite.layouts.files import savez

        savez(f, {"images": (np.random.default_rng(0).random((2, 16, 16, 3)) * 255).astype(np.uint8),
                  "labels": np.array([0, 1]), "allow_pickle": np.arange(3), "file": np.array([7.0])})
    result = run("recover", src, "-o", tmp_path / "o", *TINY)
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "o" / "kw.npz") as z:
        assert np.array_equal(z["allow_pickle"], np.arange(3)) and np.array_equal(z["file"], [7.0])


def test_16_bit_pngs_are_read_and_written_at_their_depth(tmp_path):
    grey = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    for c in ("a", "b"):
        (tmp_path / "set" / c).mkdir(parents=True)
        Image.fromarray(grey).save(tmp_path / "set" / c / "0.png")
    dset = read_set(tmp_path / "set")
    np.testing.assert_allclose(dset.images[0, 0], grey / 65535.0, atol=1e-6)   # not clipped at 255
    assert (dset.images[0] >= 0.999).mean() < 0.01
    result = run("recover", tmp_path / "set", "-o", tmp_path / "o", *TINY)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "o" / "set" / "a" / "0.png") as im:
        assert im.mode.startswith("I") and np.asarray(im).max() > 255


def test_files_follow_the_umask(tmp_path, dm_file):
    old = os.umask(0o022)
    try:
        assert run("recover", dm_file, "-o", tmp_path / "o", *TINY).exit_code == 0
    finally:
        os.umask(old)
    for name in ("dm_set.pt", "report.json"):
        assert stat.S_IMODE((tmp_path / "o" / name).stat().st_mode) == 0o644, name


def test_evaluate_refuses_unseen_test_classes_and_an_output_inside_its_input(tmp_path):
    for c in range(2):
        (tmp_path / "val" / f"c{c}").mkdir(parents=True)
        Image.fromarray(np.full((32, 32, 3), 80 * c, np.uint8)).save(tmp_path / "val" / f"c{c}" / "0.png")
    torch.save({"data": [[torch.from_numpy(make_images(2)), torch.tensor([0, 0])]]}, tmp_path / "s.pt")
    assert_one_line_error(run("evaluate", tmp_path / "s.pt", "-o", tmp_path / "e", "--test-folder",
                              tmp_path / "val", "--epochs", "1", "--seeds", "1"), 2, "holds no image")
    assert_one_line_error(run("evaluate", tmp_path / "val", "-o", tmp_path / "val" / "out", "--epochs", "1"), 2,
                          "lies inside the input")
    assert not (tmp_path / "e").exists() and not (tmp_path / "val" / "out").exists()


# ------------------------------------------------------------------------------------------------ tracebacks

@pytest.fixture
def broken(tmp_path):
    """Malformed files of many kinds, each a case from the report."""
    b = tmp_path / "in"
    b.mkdir()
    (b / "empty.pt").write_bytes(b"")
    (b / "empty.npz").write_bytes(b"")
    np.savez(b / "strings.npz", images=np.array([["a"]]), labels=np.array(["x"]))
    torch.save({"data": [[torch.from_numpy(make_images(2)), torch.tensor([0, 5000])]]}, b / "label5000.pt")
    (b / "map.json").write_text("[true, false]")
    torch.save({"data": [[torch.from_numpy(make_images(2)), torch.tensor([0, 1])]]}, b / "ok.pt")
    (b / "random.pt").write_bytes(os.urandom(4096))
    (b / "random.safetensors").write_bytes(os.urandom(4096))
    return b


def model_variant(folder, change):
    save_models(build_tiny_models(0), folder)
    change(folder)
    return folder


@pytest.mark.parametrize("args,needle", [
    (["recover", "{b}/empty.pt", "-o", "{o}"], "not a readable torch file"),
    (["recover", "{b}/empty.npz", "-o", "{o}"], "not a readable npz"),
    (["recover", "{b}/strings.npz", "-o", "{o}"], "must be numeric"),
    (["recover", "{b}/ok.pt", "-o", "{o}", "--ram-budget", "inf"], "positive, finite"),
    (["recover", "{b}/ok.pt", "-o", "{o}", "--ram-budget", "nan"], "positive, finite"),
    (["recover", "{b}/ok.pt", "-o", "{o}", "--attention-slice", "²"], "--attention-slice"),
    (["recover", "{b}/ok.pt", "-o", "{o}", "--model", "{b}/random.pt"], "not a readable torch file"),
    (["recover", "{b}/ok.pt", "-o", "{o}", "--model", "{b}/random.safetensors"], "not a readable safetensors"),
    (["recover", "{b}/label5000.pt", "-o", "{o}"], "5000 -> 5000"),
    (["recover", "{b}/ok.pt", "-o", "{o}", "--class-map", "{b}/map.json"], "non-negative integer class ids"),
    (["export", "--model", "tiny-random", "-o", "{b}/ok.pt"], "is a file"),
])
def test_bad_input_ends_in_one_line_not_a_traceback(tmp_path, broken, args, needle):
    args = [a.format(b=broken, o=tmp_path / "out") for a in args]
    if args[0] == "recover" and "--model" not in args:
        args += ["--model", "tiny-random"]
    before = snapshot(broken)
    assert_one_line_error(run(*args), 2, needle)
    assert not (tmp_path / "out").exists() and snapshot(broken) == before


@pytest.mark.parametrize("change,needle", [
    (lambda f: (f / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(os.urandom(2048)),
     "not a readable safetensors"),
    (lambda f: (f / "transformer" / "config.json").write_text("[1, 2]"), "not a model config"),
    (lambda f: (f / "transformer" / "config.json").write_text(json.dumps(
        {**json.loads((f / "transformer" / "config.json").read_text()), "num_layers": "two"})), "cannot load the DiT"),
    (lambda f: (f / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"beta_schedule": "squaredcos_cap_v2"})), "not one DIVER runs"),
    (lambda f: (f / "scheduler" / "scheduler_config.json").write_text("{not json"), "not valid JSON"),
])
def test_damaged_model_folders_are_one_line(tmp_path, dm_file, change, needle):
    folder = model_variant(tmp_path / "model", change)
    for extra in ([], ["--ram-budget", "8"]):       # whole loading and the memory runtime's lazy loading
        assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "o", "--model", folder, "--device", "cpu",
                                  *extra), 2, needle)


def test_resume_over_a_damaged_run_record_or_cached_image(tmp_path, dm_file):
    out = tmp_path / "o"
    assert run("recover", dm_file, "-o", out, *TINY, "--batch-size", "2").exit_code == 0
    reference = torch.load(out / "dm_set.pt", weights_only=True)["data"][0][0]
    cached = sorted((out / ".diver-lite" / "images").glob("*.safetensors"))
    cached[1].write_bytes(cached[1].read_bytes()[:40])                         # truncated
    cached[3].write_bytes(b"\x00" * 8)                                         # garbled
    result = run("recover", dm_file, "-o", out, *TINY, "--batch-size", "2", "--resume")
    assert result.exit_code == 0, result.output
    assert torch.equal(torch.load(out / "dm_set.pt", weights_only=True)["data"][0][0], reference)
    (out / ".diver-lite" / "run.json").write_text("{cut off")
    assert_one_line_error(run("recover", dm_file, "-o", out, *TINY, "--resume"), 2, "is damaged")


def test_damaged_onnx_manifests_are_one_line(tmp_path, dm_file, tiny_onnx_dir):
    import shutil

    onnx_dir = tmp_path / "onnx"
    shutil.copytree(tiny_onnx_dir, onnx_dir)          # the session's export (the CLI's export: test_onnx.py)
    good = json.loads((onnx_dir / "manifest.json").read_text())
    cases = [([1, 2], "format"), ({k: v for k, v in good.items() if k != "latent_size"}, "latent_size"),
             ({**good, "latent_size": 8, "image_size": 64}, "belongs to another model"),
             ({**good, "graphs": {**good["graphs"], "dit": {"file": "../../etc/passwd"}}}, "are not")]
    for manifest, needle in cases:
        (onnx_dir / "manifest.json").write_text(json.dumps(manifest))
        assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "o", "--backend", "onnxruntime", "--onnx",
                                  onnx_dir, "-q"), 2, needle)


# ------------------------------------------------------------------------------------------------ misleading

def idx(path, array, kind):
    path.write_bytes(gzip.compress(bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
                                   + array.astype(np.uint8).tobytes()))


@pytest.mark.parametrize("images,labels,needle", [
    (np.zeros((20, 28, 28)), np.zeros(19), "has 20 images but"),
    (np.zeros((20, 28, 28)), np.full(20, 200), "has label 200"),
    (np.zeros(20), np.zeros(20), "not images [N, H, W]"),
])
@pytest.mark.parametrize("command", ["distill", "train-prior"])
def test_malformed_idx_files_say_what_is_wrong(tmp_path, images, labels, needle, command):
    data = tmp_path / "idx"
    data.mkdir()
    idx(data / "train-images-idx3-ubyte.gz", images, 3)
    idx(data / "train-labels-idx1-ubyte.gz", labels, 1)
    out = tmp_path / ("d.pt" if command == "distill" else "prior")
    assert_one_line_error(run(command, "-o", out, "--data", data), 2, needle)
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ atomicity

def test_an_export_that_stops_midway_leaves_no_graph_without_a_manifest(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import diver_lite.export.onnx as onnx_export

    real, calls = onnx_export.validate_graph, []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt          # as a kill or Ctrl-C would, after one graph was written
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx_export, "validate_graph", fail_second)
    CliRunner().invoke(cli, ["export", "--model", "tiny-random", "-o", str(tmp_path / "x")])
    assert not list((tmp_path / "x").glob("*.onnx")) and not (tmp_path / "x" / "manifest.json").exists()


def test_the_cli_starts_without_posix_only_modules(tmp_path):
    """Windows has no `resource`: the CLI and its reports must not need it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['resource'] = None\n"
            "from diver_lite.cli.main import cli\n"
            "from diver_lite.pipeline.report import peak_rss_mb, current_rss_bytes\n"
            "assert peak_rss_mb() > 0 and current_rss_bytes() > 0\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_garbled_config_key_is_caught_before_the_forward_pass(tmp_path, dm_file):
    """Found by the fuzz tests: 'num_`ttention_heads' made diffusers build 16 heads and fail in the forward."""
    def garble(f):
        cfg = (f / "transformer" / "config.json").read_text()
        (f / "transformer" / "config.json").write_text(cfg.replace("num_attention_heads", "num_`ttention_heads"))
    folder = model_variant(tmp_path / "model", garble)
    for extra in ([], ["--ram-budget", "8"]):
        assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "o", "--model", folder, "--device", "cpu",
                                  *extra), 2, "do not fit")
