"""DSA and stage-1 distillation (DM, random-real) on the vendored Fashion-MNIST subset."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from diver_lite.experiments.fashion_mnist import data as fm
from diver_lite.cli.main import cli
from diver_lite.layouts import read_set
from diver_lite.experiments.fashion_mnist.dsa import augment


@pytest.mark.parametrize("op", ["color", "crop", "cutout", "flip", "scale", "rotate"])
def test_dsa_is_siamese_and_differentiable(op):
    x = torch.rand(3, 3, 16, 16, requires_grad=True)
    a, b = augment(x, 7, op), augment(x.detach().clone(), 7, op)
    assert torch.equal(a, b.detach()) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    if op != "flip":
        assert not torch.allclose(a, x)


def test_dm_improves_its_matching_loss():
    """On a fixed panel of random ConvNets, the distilled images match the class means better than the real
    images they started from."""
    from diver_lite.experiments.fashion_mnist.distill import distill_dm, embedding_gap, random_real

    images, labels, _ = fm.load("train")
    x, y_real = fm.to_images(images[:1000]), labels[:1000]
    init, init_labels = random_real(x, y_real, 2, seed=1)
    syn, y, losses = distill_dm(x, y_real, ipc=2, iterations=30, batch_real=64, width=32, seed=1)
    assert syn.shape == (20, 3, 32, 32) and np.array_equal(y, init_labels) and np.isfinite(syn).all()
    before = embedding_gap(x, y_real, init, init_labels, width=32)
    after = embedding_gap(x, y_real, syn, y, width=32)
    assert after < 0.8 * before, (before, after)


def test_distill_cli_writes_a_dm_set_that_recover_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")
    runner = CliRunner()
    out = tmp_path / "real.pt"
    result = runner.invoke(cli, ["distill", "-o", str(out), "--method", "random-real", "--ipc", "3"])
    assert result.exit_code == 0, result.output
    dset = read_set(out)
    assert dset.layout == "dm" and dset.images.shape == (30, 3, 32, 32) and dset.pixel_space == "imagenet"
    assert np.bincount(dset.labels).tolist() == [3] * 10
    again = runner.invoke(cli, ["distill", "-o", str(out), "--method", "random-real"])
    assert again.exit_code == 2 and "exists" in again.output
    too_many = runner.invoke(cli, ["distill", "-o", str(tmp_path / "x.pt"), "--ipc", "500"])
    assert too_many.exit_code == 2 and "exceeds" in too_many.output


def test_mtt_matching_loss_falls_and_recover_reads_its_layout(tmp_path, monkeypatch):
    """MTT on tiny settings: experts, then trajectory matching whose loss falls; the MTT folder is what recover
    reads as a user's MTT run (--layout mtt), and a second run reuses the cached experts."""
    import json

    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")
    runner = CliRunner()
    out = tmp_path / "mtt"
    args = ["distill", "-o", str(out), "--method", "mtt", "--ipc", "1", "--iterations", "25", "--experts", "2",
            "--width", "16", "--subset-size", "300", "--syn-steps", "8", "--experts-dir", str(tmp_path / "buffer")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "mtt.json").read_text())
    assert info["last_loss_mean_of_10"] < info["first_loss"], info
    assert info["config"]["train_epochs"] == 4 and info["learned_lr"] > 0
    dset = read_set(out, layout="mtt")
    assert dset.layout == "mtt" and dset.images.shape == (10, 3, 32, 32) and dset.pixel_space == "imagenet"
    assert np.bincount(dset.labels).tolist() == [1] * 10
    rec = runner.invoke(cli, ["recover", str(out), "-o", str(tmp_path / "rec"), "--layout", "mtt", "-q", "--no-png"])
    assert rec.exit_code == 0, rec.output
    assert read_set(tmp_path / "rec" / "mtt", layout="mtt").images.shape == dset.images.shape
    again = runner.invoke(cli, args[:2] + [str(tmp_path / "mtt2")] + args[3:])
    assert again.exit_code == 0 and "reusing 2 expert trajectories" in again.output, again.output


def test_the_validation_split_is_held_out_of_what_stage_1_distils_from(tmp_path, monkeypatch):
    """The images `evaluate --split val` tests on never reach a distilled set (nor MTT's experts), unless asked."""
    from diver_lite.cli.distill import stage1_pool
    from diver_lite.experiments.fashion_mnist import data as fm

    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")          # the vendored subset
    whole, held = stage1_pool(None, 64, include_validation=True), stage1_pool(None, 64, include_validation=False)
    val_images, _, _ = fm.load("val")
    val = {fm.to_images(v[None])[0].tobytes() for v in val_images}
    assert len(whole.labels) - len(held.labels) == len(val_images) > 0
    assert not any(x.tobytes() in val for x in held.images)
    assert sum(x.tobytes() in val for x in whole.images) == len(val_images)
    result = CliRunner().invoke(cli, ["distill", "-o", str(tmp_path / "r.pt"), "--method", "random-real",
                                      "--ipc", "50"])
    assert result.exit_code == 0, result.output
    saved = torch.load(tmp_path / "r.pt", weights_only=True)
    from diver_lite.core.prepare import to_unit

    picked = to_unit(saved["data"][0][0].numpy(), "imagenet")
    assert saved["validation_held_out"] and not any(np.abs(p - fm.to_images(v[None])[0]).max() < 1e-5
                                                    for p in picked for v in val_images[:50])
