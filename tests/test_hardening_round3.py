"""Hardening, round three: what a run reads and produces. Integer pixels are pixels (read by their range, written
back in their dtype), booleans, complex numbers, sparse tensors and non-finite soft labels are refused in one line."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import assert_one_line_error
from diver_lite.cli.main import cli
from diver_lite.layouts import read_set


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def recover(src, out, *extra):
    result = run("recover", src, "-o", out, "--model", "tiny-random", "--t-init", "3", "--steps", "4", "--no-png",
                 "-q", *extra)
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


def grey_ramp(n=4, size=16, top=255):
    """[N, H, W, 3] integer images spanning 0..top: real pixel values, as people hand them over."""
    ramp = np.linspace(0, top, size * size).reshape(size, size)
    return np.stack([np.repeat(np.roll(ramp, k, axis=0)[..., None], 3, axis=2) for k in range(n)])


@pytest.mark.parametrize("dtype,top", [("int64", 255), ("uint8", 255), ("uint16", 65535), ("int32", 255)])
def test_integer_npz_pixels_are_read_as_pixels_and_written_back_in_their_dtype(tmp_path, dtype, top):
    src = tmp_path / "set.npz"
    images = grey_ramp(top=top).round().astype(dtype)
    np.savez(src, images=images, labels=np.arange(4) % 2)
    dset = read_set(src)
    assert dset.pixel_space == "unit" and 0 <= dset.images.min() and dset.images.max() == pytest.approx(1.0)
    report = recover(src, tmp_path / "out")
    assert report["input"]["pixel_space"] == "unit"
    with np.load(tmp_path / "out" / "set.npz") as z:
        back = z["images"]
    assert back.dtype == np.dtype(dtype) and back.shape == images.shape
    assert back.min() >= 0 and back.max() <= top and back.max() > top // 4   # pixels, not values in [-2, 2]


def test_an_integer_dm_set_is_pixels_too(tmp_path):
    src = tmp_path / "dm.pt"
    x = torch.from_numpy(grey_ramp(top=255).transpose(0, 3, 1, 2).copy()).to(torch.uint8)
    torch.save({"data": [[x, torch.tensor([0, 1, 0, 1])]], "res": 16}, src)
    recover(src, tmp_path / "out")
    back = torch.load(tmp_path / "out" / "dm.pt", weights_only=True)["data"][0][0]
    assert back.dtype == torch.uint8 and int(back.max()) > 60
    assert_one_line_error(run("recover", src, "-o", tmp_path / "o2", "--model", "tiny-random", "--pixel-space",
                              "imagenet"), 2, "integer pixel values")


@pytest.mark.parametrize("make,needle", [
    (lambda: torch.zeros(4, 3, 16, 16, dtype=torch.bool), "booleans"),
    (lambda: torch.zeros(4, 3, 16, 16, dtype=torch.complex64), "complex"),
    (lambda: torch.zeros(4, 3, 16, 16).to_sparse(), "sparse"),
    (lambda: torch.full((4, 3, 16, 16), 300, dtype=torch.int64) * torch.tensor(-1), "not pixel values")])
def test_images_that_are_not_pixels_are_refused_in_one_line(tmp_path, make, needle):
    src = tmp_path / "dm.pt"
    torch.save({"data": [[make(), torch.tensor([0, 1, 0, 1])]], "res": 16}, src)
    assert_one_line_error(run("recover", src, "-o", tmp_path / "out", "--model", "tiny-random"), 2, needle)
    assert not (tmp_path / "out").exists()


def test_non_finite_soft_labels_are_refused(tmp_path):
    folder = tmp_path / "mtt"
    folder.mkdir()
    torch.save(torch.randn(4, 3, 16, 16), folder / "images_best.pt")
    soft = torch.softmax(torch.randn(4, 3), 1)
    soft[1, 2] = float("nan")
    torch.save(soft, folder / "labels_best.pt")
    assert_one_line_error(run("recover", folder, "-o", tmp_path / "out", "--model", "tiny-random"), 2,
                          "soft labels contain NaN")
    np.savez(tmp_path / "s.npz", images=np.zeros((4, 16, 16, 3), np.float32),
             labels=np.array([[1, 0], [0, np.inf], [1, 0], [0, 1]], np.float32))
    assert_one_line_error(run("recover", tmp_path / "s.npz", "-o", tmp_path / "out2", "--model", "tiny-random"), 2,
                          "soft labels contain NaN")
    np.savez(tmp_path / "b.npz", images=np.zeros((4, 16, 16, 3), bool), labels=np.arange(4))
    assert_one_line_error(run("recover", tmp_path / "b.npz", "-o", tmp_path / "out3", "--model", "tiny-random"), 2,
                          "booleans")


def test_a_resumed_run_whose_model_changed_in_place_is_refused(tmp_path, dm_file, tiny_model_dir):
    """run.json names the model by content: a shard recovered with one model's weights, the weights retrained in
    place, then --resume: refused, where it used to mix images of both models."""
    import shutil

    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    out = tmp_path / "out"
    first = run("recover", dm_file, "-o", out, "--model", model, "--shard", "0/2", "--batch-size", "2", "-q")
    assert first.exit_code == 0, first.output
    weights = model / "transformer" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    save_file({k: v + 0.01 for k, v in state.items()}, weights)        # same names, shapes and size
    again = run("recover", dm_file, "-o", out, "--model", model, "--shard", "1/2", "--batch-size", "2", "-q")
    assert_one_line_error(again, 2, "model_fingerprint")


def test_a_second_writer_is_refused_while_the_first_runs_and_a_dead_ones_lock_is_taken_over(tmp_path, dm_file):
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    recover(dm_file, out)
    locks = out / ".diver-lite" / "locks"
    locks.mkdir(exist_ok=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (locks / f"{sleeper.pid}.single").write_text("")
        assert_one_line_error(run("recover", dm_file, "-o", out, "--model", "tiny-random", "--overwrite"), 2,
                              f"another diver-lite run (pid {sleeper.pid}) is writing to")
    finally:
        sleeper.kill()
        sleeper.wait()
    recover(dm_file, out, "--overwrite")                              # its holder died: the lock is stale
    assert not any(p.name.startswith(f"{sleeper.pid}.") for p in locks.iterdir())
    assert os.getpid() > 0


def test_overwrite_replaces_the_whole_earlier_output(tmp_path, dm_file):
    """--overwrite after a run with PNGs of more images leaves none of the earlier files beside the new output."""
    out = tmp_path / "out"
    result = run("recover", dm_file, "-o", out, "--model", "tiny-random", "--t-init", "3", "--steps", "4", "-q")
    assert result.exit_code == 0, result.output
    assert len(list((out / "png").rglob("*.png"))) == 6
    recover(dm_file, out, "--overwrite")                              # --no-png this time
    assert not (out / "png").exists() and not (out / "grid.png").exists()
    assert sorted(p.name for p in out.iterdir()) == [".diver-lite", "dm_set.pt", "report.json", "report.md"]


@pytest.mark.parametrize("args,needle", [
    (["--sampling-steps", "5000"], "above 1000"),
    (["--cfg-scale", "inf"], "not finite"),
    (["--pixel-mean", "0.5", "--pixel-std", "1e-50"], "std between"),
    (["--pixel-mean", "nan", "--pixel-std", "0.3"], "finite"),
])
def test_values_the_checks_let_through_are_refused_with_the_real_cause(tmp_path, dm_file, args, needle):
    assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "out", "--model", "tiny-random", *args), 2,
                          needle)
    assert not (tmp_path / "out").exists()


def test_bad_environment_and_provider_names_are_one_line(tmp_path, dm_file, monkeypatch):
    monkeypatch.setenv("RANK", "abc")
    assert_one_line_error(run("recover", dm_file, "-o", tmp_path / "out", "--model", "tiny-random"), 2,
                          "RANK='abc'")
    monkeypatch.delenv("RANK")
    assert_one_line_error(run("export", "--model", "tiny-random", "-o", tmp_path / "x", "--provider", "cdua"), 2,
                          "unknown ONNX Runtime provider 'cdua'")


def test_the_python_api_refuses_values_before_writing(tmp_path, dm_file):
    from diver_lite import RecoverConfig
    from diver_lite.errors import ConfigError

    for bad in [dict(seed=-1), dict(batch_size=2.5), dict(cfg_scale=float("inf")), dict(num_sampling_steps=5000)]:
        with pytest.raises(ConfigError):
            RecoverConfig(**bad)
    with pytest.raises(ConfigError):
        RecoverConfig.from_preset("dm", 0)


def test_imported_runs_outside_0_100_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    from diver_lite.experiments.fashion_mnist import data as fm

    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")
    assert run("distill", "-o", tmp_path / "r.pt", "--method", "random-real", "--ipc", "2").exit_code == 0
    ok = run("evaluate", tmp_path / "r.pt", "-o", tmp_path / "ev", "--students", "convnet", "--seeds", "1",
             "--epochs", "1")
    assert ok.exit_code == 0, ok.output
    record = json.loads((tmp_path / "ev" / "results.json").read_text())
    record["results"][str(tmp_path / "r.pt")]["students"]["convnet"]["runs"] = [999.0]
    (tmp_path / "bad.json").write_text(json.dumps(record))
    result = run("evaluate", tmp_path / "r.pt", "-o", tmp_path / "ev2", "--students", "convnet", "--seeds", "1",
                 "--epochs", "1", "--import-runs", tmp_path / "bad.json")
    assert_one_line_error(result, 2, "not 0-100 %")
    assert not (tmp_path / "ev2" / "results.png").exists()


@pytest.mark.parametrize("name", ["report.json", "png", "grid.png"])
def test_a_set_named_like_the_runs_own_outputs_is_refused_up_front(tmp_path, name):
    if name == "png":                                   # an image folder named png: previews would mix with it
        src = tmp_path / "png"
        for c in ("a", "b"):
            (src / c).mkdir(parents=True)
            from PIL import Image

            Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(src / c / "0.png")
    else:
        src = tmp_path / name
        torch.save({"data": [[torch.randn(2, 3, 16, 16), torch.tensor([0, 1])]], "res": 16}, src)
    out = tmp_path / "out"
    assert_one_line_error(run("recover", src, "-o", out, "--model", "tiny-random", "--layout",
                              "folder" if name == "png" else "dm"), 2, "a name the run's own")
    assert not out.exists()
