"""Readers and writers: every layout round-trips, is detected, and bad files are refused with a clear error."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_images
from diver_lite.layouts import detect_layout, read_set, write_set
from diver_lite.errors import InputError


def _same(a, b):
    assert a.layout == b.layout and a.pixel_space == b.pixel_space
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.images.dtype == np.float32 and a.labels.dtype == b.labels.dtype


def _write_layout(tmp_path, layout):
    x, y = torch.from_numpy(make_images(4)), torch.tensor([0, 1, 1, 0])
    if layout == "dm":
        p = tmp_path / "res_DM.pt"
        torch.save({"data": [[x, y]], "res": 32, "note": "kept"}, p)
    elif layout == "mtt":
        p = tmp_path / "mtt"
        p.mkdir()
        torch.save(x, p / "images_best.pt")
        torch.save(torch.softmax(torch.randn(4, 2), 1), p / "labels_best.pt")  # soft labels
    elif layout == "glad":
        p = tmp_path / "glad"
        p.mkdir()
        torch.save(torch.from_numpy(make_images(20)), p / "images_best.pt")
    elif layout == "ncfm":
        p = tmp_path / "ncfm.pt"
        torch.save([torch.rand(2, 3, 64, 64), torch.tensor([0, 1])], p)
    elif layout == "folder":
        p = tmp_path / "folder"
        for cls in ("cat", "dog"):
            (p / cls).mkdir(parents=True)
            for k in range(2):
                arr = np.random.default_rng(k).integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(arr).save(p / cls / f"img{k}.png")
    elif layout == "npz":
        p = tmp_path / "set.npz"
        np.savez(p, images=np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8),
                 labels=np.array([0, 1, 2, 3]))
    return p


@pytest.mark.parametrize("layout", ["dm", "mtt", "glad", "ncfm", "folder", "npz"])
def test_every_layout_is_detected_and_round_trips(tmp_path, layout):
    src = _write_layout(tmp_path, layout)
    assert detect_layout(src) == layout
    dset = read_set(src)
    out = write_set(dset, tmp_path / "out")
    assert out.name == src.name  # drop-in: same file or folder name
    back = read_set(out)
    _same(dset, back)


def test_dm_keeps_extra_keys_and_updates_res(tmp_path):
    dset = read_set(_write_layout(tmp_path, "dm"))
    out = write_set(dset.with_images(np.zeros((4, 3, 64, 64), np.float32)), tmp_path / "out")
    obj = torch.load(out, weights_only=True)
    assert obj["note"] == "kept" and obj["res"] == 64 and obj["data"][0][0].shape == (4, 3, 64, 64)


def test_soft_labels_are_kept_and_argmax_is_the_class(tmp_path):
    dset = read_set(_write_layout(tmp_path, "mtt"))
    assert dset.labels.ndim == 2
    np.testing.assert_array_equal(dset.hard_labels, dset.labels.argmax(1))


def test_glad_labels_are_class_major(tmp_path):
    dset = read_set(_write_layout(tmp_path, "glad"))
    assert dset.labels.tolist() == [c for c in range(10) for _ in range(2)] and dset.labels.dtype == np.int64


def test_pixel_spaces_follow_the_layout(tmp_path):
    assert read_set(_write_layout(tmp_path, "dm")).pixel_space == "imagenet"
    assert read_set(_write_layout(tmp_path, "ncfm")).pixel_space == "unit"
    assert read_set(_write_layout(tmp_path, "folder")).pixel_space == "unit"


def test_a_pickle_that_carries_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"data": [[Evil(), torch.zeros(1)]]}, path)
    with pytest.raises(InputError, match="refused"):
        read_set(path)
    assert not marker.exists()


def test_truncated_file_says_so(tmp_path):
    good = _write_layout(tmp_path, "dm")
    bad = tmp_path / "cut.pt"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable torch file"):
        read_set(bad)


def test_unknown_structure_names_the_layouts_tried(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"images": torch.zeros(2, 3, 8, 8)}, path)
    with pytest.raises(InputError, match="tried dm .* ncfm"):
        read_set(path)


@pytest.mark.parametrize("images, labels, message", [
    (torch.zeros(0, 3, 32, 32), torch.zeros(0, dtype=torch.long), "empty"),
    (torch.zeros(2, 4, 32, 32), torch.tensor([0, 1]), "4 channels"),
    (torch.zeros(2, 3, 32, 16), torch.tensor([0, 1]), "not square"),
    (torch.full((2, 3, 32, 32), float("nan")), torch.tensor([0, 1]), "NaN"),
    (torch.zeros(2, 3, 32, 32), torch.tensor([0]), "one label per image"),
    (torch.zeros(2, 3, 32, 32), torch.tensor([0, -1]), "non-negative"),
])
def test_bad_sets_are_refused(tmp_path, images, labels, message):
    path = tmp_path / "bad.pt"
    torch.save({"data": [[images, labels]], "res": 32}, path)
    with pytest.raises(InputError, match=message):
        read_set(path)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_set(tmp_path / "nope.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither images_best.pt"):
        read_set(tmp_path / "empty")


def test_a_named_layout_that_does_not_fit_the_path(tmp_path):
    with pytest.raises(InputError, match="reads a folder"):
        read_set(_write_layout(tmp_path, "dm"), layout="mtt")
