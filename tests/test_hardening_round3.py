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
