"""Sets as users bring them: every DM experiment recovered, pixel spaces declared by name or mean/std, grey sets,
ZCA-whitened sets, and a warning when a set's values contradict the assumed space."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import assert_one_line_error, make_images
from diver_lite.cli.main import cli
from diver_lite.layouts import read_set, write_set
from diver_lite.errors import InputError
from diver_lite.core.prepare import custom_space, from_unit, to_unit, to_vae_input

RUN = ["--model", "tiny-random", "-q", "--no-png", "--t-init", "2", "--steps", "3", "--device", "cpu"]


def recover(*args):
    return CliRunner().invoke(cli, ["recover", *map(str, args), *RUN])


def dm_experiments(path, sizes=(4, 4, 4)):
    data = [[torch.from_numpy(make_images(n, seed=k)), torch.arange(n) % 2] for k, n in enumerate(sizes)]
    torch.save({"data": data, "res": 32}, path)
    return data


def test_every_dm_experiment_is_recovered_and_written_back(tmp_path):
    data = dm_experiments(tmp_path / "dm.pt")
    result = recover(tmp_path / "dm.pt", "-o", tmp_path / "all")
    assert result.exit_code == 0, result.output
    out = torch.load(tmp_path / "all" / "dm.pt", weights_only=True)["data"]
    assert len(out) == 3
    for (x, y), (rx, ry) in zip(data, out):
        assert rx.shape == x.shape and torch.equal(ry, y) and not torch.allclose(rx, x)
    report = json.loads((tmp_path / "all" / "report.json").read_text())
    assert report["input"]["images"] == 12 and report["input"]["experiments"] == 3


def test_one_dm_experiment_leaves_the_others_untouched(tmp_path):
    data = dm_experiments(tmp_path / "dm.pt")
    result = recover(tmp_path / "dm.pt", "-o", tmp_path / "one", "--experiment", "1")
    assert result.exit_code == 0, result.output
    out = torch.load(tmp_path / "one" / "dm.pt", weights_only=True)["data"]
    assert torch.equal(out[0][0], data[0][0]) and torch.equal(out[2][0], data[2][0])
    assert out[1][0].shape == data[1][0].shape and not torch.allclose(out[1][0], data[1][0])
    assert_one_line_error(recover(tmp_path / "dm.pt", "-o", tmp_path / "bad", "--experiment", "3"), 2,
                          "holds 3 experiment(s)")


def test_named_and_custom_pixel_spaces_round_trip():
    u = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    for space in ("imagenet", "glad-imagenet", "cifar10", "cifar100", custom_space((0.5, 0.4, 0.3), (0.2, 0.3, 0.4))):
        np.testing.assert_allclose(to_unit(from_unit(u, space), space), u, atol=1e-6)
    x = from_unit(u[:, :1], "fashion-mnist")
    np.testing.assert_allclose(x, (u[:, :1] - 0.2861) / 0.3530, rtol=1e-5)
    vae_in = to_vae_input(x, "fashion-mnist", "auto")                 # grey -> 3 channels on the way in
    assert vae_in.shape[1] == 3 and np.allclose(vae_in[:, 0], u[:, 0] * 2 - 1, atol=1e-5)
    with pytest.raises(ValueError):
        custom_space((0.5, 0.5), (0.2, 0.2))


def test_grey_dm_set_recovers_in_its_own_space_and_stays_grey(tmp_path):
    unit = np.random.default_rng(1).random((4, 1, 32, 32), dtype=np.float32)
    torch.save({"data": [[torch.from_numpy(from_unit(unit, "fashion-mnist")), torch.tensor([0, 1, 0, 1])]]},
               tmp_path / "grey.pt")
    assert any("fashion-mnist" in w for w in read_set(tmp_path / "grey.pt").warnings)   # read as imagenet: said
    assert read_set(tmp_path / "grey.pt", pixel_space="fashion-mnist").warnings == []
    result = recover(tmp_path / "grey.pt", "-o", tmp_path / "o", "--pixel-space", "fashion-mnist")
    assert result.exit_code == 0, result.output
    out = torch.load(tmp_path / "o" / "grey.pt", weights_only=True)["data"][0][0]
    assert out.shape == (4, 1, 32, 32)                               # back to one channel
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["input"]["pixel_space"] == "fashion-mnist" and report["input"]["warnings"] == []


def test_values_that_contradict_the_layouts_space_are_warned_about(tmp_path):
    (tmp_path / "mtt").mkdir()
    unit = np.random.default_rng(2).random((4, 3, 32, 32), dtype=np.float32)     # [0, 1], not normalised
    torch.save(torch.from_numpy(unit), tmp_path / "mtt" / "images_best.pt")
    torch.save(torch.tensor([0, 1, 0, 1]), tmp_path / "mtt" / "labels_best.pt")
    warnings = read_set(tmp_path / "mtt").warnings
    assert len(warnings) == 1 and "--pixel-space unit" in warnings[0]
    result = CliRunner().invoke(cli, ["recover", str(tmp_path / "mtt"), "-o", str(tmp_path / "o"), *RUN[:-4]])
    assert result.exit_code == 0 and "--pixel-space unit" in result.output
    assert read_set(tmp_path / "mtt", pixel_space="unit").warnings == []


def test_custom_mean_std_from_the_cli(tmp_path, dm_file):
    result = recover(dm_file, "-o", tmp_path / "o", "--pixel-mean", "0.5,0.5,0.5", "--pixel-std", "0.25,0.25,0.25")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "report.json").read_text())["input"]["pixel_space"].startswith("custom:")
    assert_one_line_error(recover(dm_file, "-o", tmp_path / "b", "--pixel-mean", "0.5"), 2, "go together")
    assert_one_line_error(recover(dm_file, "-o", tmp_path / "c", "--pixel-mean", "0.5,0.5", "--pixel-std",
                                  "0.2,0.2"), 2, "1 or 3 values")


def test_zca_sets_are_refused_without_their_whitening_and_round_trip_with_it(tmp_path):
    rng = np.random.default_rng(3)
    d = 3 * 16 * 16
    mean = rng.normal(0, 0.1, d)
    transform = np.eye(d) * 2.0 + rng.normal(0, 0.01, (d, d))
    x = make_images(4, size=16)
    white = ((x.reshape(4, -1) - mean) @ transform).reshape(x.shape).astype(np.float32)
    (tmp_path / "mtt").mkdir()
    torch.save(torch.from_numpy(white), tmp_path / "mtt" / "images_best.pt")
    torch.save(torch.tensor([0, 1, 0, 1]), tmp_path / "mtt" / "labels_best.pt")
    np.savez(tmp_path / "zca.npz", mean=mean, transform=transform)
    with pytest.raises(InputError, match="without its whitening"):
        read_set(tmp_path / "mtt", pixel_space="zca")
    assert_one_line_error(recover(tmp_path / "mtt", "-o", tmp_path / "r", "--pixel-space", "zca"), 2,
                          "without its whitening")
    dset = read_set(tmp_path / "mtt", pixel_space="zca", zca=tmp_path / "zca.npz")
    np.testing.assert_allclose(dset.images, x, atol=1e-4)            # recovered in the un-whitened space
    write_set(dset, tmp_path / "back")                                # ... and whitened again on the way out
    np.testing.assert_allclose(torch.load(tmp_path / "back" / "mtt" / "images_best.pt", weights_only=True).numpy(),
                               white, atol=1e-3)
    np.savez(tmp_path / "wrong.npz", mean=mean[:10], transform=transform)
    with pytest.raises(InputError, match="does not fit"):
        read_set(tmp_path / "mtt", pixel_space="zca", zca=tmp_path / "wrong.npz")
    result = recover(tmp_path / "mtt", "-o", tmp_path / "ok", "--pixel-space", "zca", "--zca", tmp_path / "zca.npz")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "ok" / "report.json").read_text())["input"]["zca"] is True
