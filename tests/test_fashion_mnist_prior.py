"""Fashion-MNIST offline, and `diver-lite train-prior` end to end at a few steps on the vendored subset."""

import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner

from diver_lite.experiments.fashion_mnist import data as fm
from diver_lite.cli.main import cli
from diver_lite.errors import InputError


def _write_idx(path, array: np.ndarray):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_files_in_a_user_folder(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(7) % 10)
    x, y, source = fm.load("test", tmp_path)
    assert np.array_equal(x, images) and y.tolist() == [0, 1, 2, 3, 4, 5, 6] and source == str(tmp_path)
    rgb = fm.to_images(x)
    assert rgb.shape == (7, 3, 32, 32) and rgb.max() <= 1
    assert np.array_equal(rgb[:, 0, 2:30, 2:30], x.astype(np.float32) / 255.0)
    with pytest.raises(InputError, match="lacks train-images"):
        fm.load("train", tmp_path)


def test_the_vendored_subset_is_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")
    x, y, source = fm.load("train")
    assert x.shape == (1000, 28, 28) and np.bincount(y).tolist() == [100] * 10 and "vendored" in source


SMOKE = ["--vae-steps", "12", "--dit-steps", "30", "--dit-width", "160", "--dit-depth", "4", "--device", "cpu",
         "--classifier-epochs", "1", "--samples-per-class", "2"]


# The module fixture (smoke_prior) is built once: every test here runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("smoke_prior")


@pytest.fixture(scope="module")
def smoke_prior(tmp_path_factory):
    """One small prior trained on the vendored subset, read by the smoke test and continued by the next."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fm, "DEBIAN_ROOT", tmp_path_factory.mktemp("absent") / "none")   # the vendored subset
        out = tmp_path_factory.mktemp("smoke") / "prior"
        result = CliRunner().invoke(cli, ["train-prior", "-o", str(out), *SMOKE], catch_exceptions=False)
    return out, result


def test_train_prior_smoke_writes_a_loadable_model_and_its_card(smoke_prior):
    from diver_lite.models.load import load_models

    out, result = smoke_prior
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    vae, dit_mse = history["vae_loss"], [m for m, _ in history["dit_mse_vb"]]
    assert np.mean(vae[-5:]) < 0.7 * np.mean(vae[:5]) and np.mean(dit_mse[-5:]) < 0.7 * np.mean(dit_mse[:5])
    assert metrics["samples"] == 20 and 0 <= metrics["sample_accuracy"] <= 1
    assert abs(metrics["sample_accuracy"] * 20 - round(metrics["sample_accuracy"] * 20)) < 1e-9   # of 20 samples
    card = (out / "MODEL_CARD.md").read_text()
    assert f"{metrics['sample_accuracy']:.1%}" in card and "MIT" in card
    # the card's command reproduces this run (its sizes and steps), and names the device it ran on
    assert "--seed 0 --vae-steps 12 --dit-steps 30 --dit-width 160 --dit-depth 4`" in card
    assert "torch cpu" in metrics["device"] and metrics["device"] in card
    assert (out / "loss.png").stat().st_size > 0 and (out / "samples.png").stat().st_size > 0
    models = load_models(out)
    assert models.num_classes == 10 and models.image_size == 32 and models.tied_parameters > 0
    dit = models.transformer.config
    assert (dit.num_attention_heads * dit.attention_head_dim, dit.num_layers) == (160, 4)


def test_train_prior_continues_a_priors_dit_and_keeps_its_vae(tmp_path, monkeypatch, smoke_prior):
    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")
    (first, _), then = smoke_prior, tmp_path / "then"
    quick = ["--device", "cpu", "--classifier-epochs", "1", "--samples-per-class", "1"]
    refused = CliRunner().invoke(cli, ["train-prior", "-o", str(tmp_path / "x"), "--continue-from", str(first),
                                       "--dit-width", "128"])
    assert refused.exit_code == 2 and "drop --dit-width" in refused.output
    result = CliRunner().invoke(cli, ["train-prior", "-o", str(then), "--continue-from", str(first), "--dit-steps", "1",
                                      "--dit-lr-schedule", "cosine", *quick], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    vae = "vae/diffusion_pytorch_model.safetensors"
    assert (then / vae).read_bytes() == (first / vae).read_bytes()
    history = json.loads((then / "history.json").read_text())
    assert history["vae_loss"] == [] and len(history["dit_mse_vb"]) == 1
    # one AdamW step (lr 5e-4) from the first prior's weights: every weight within one step of where it was
    from safetensors.numpy import load_file

    before, after = (load_file(d / "transformer/diffusion_pytorch_model.safetensors") for d in (first, then))
    assert before.keys() == after.keys()
    moved = max(float(np.abs(after[k] - before[k]).max()) for k in before)
    assert 0 < moved <= 1e-3
    card = (then / "MODEL_CARD.md").read_text()
    assert f"--continue-from {first} --dit-steps 1 --dit-lr-schedule cosine`" in card and "not retrained" in card
    # and it says how the prior it started from was trained
    assert "`diver-lite train-prior -o DIR --seed 0 --vae-steps 12 --dit-steps 30 --dit-width 160 --dit-depth 4` " \
           "trained for 30 DiT steps" in card
    dit = json.loads((then / "transformer/config.json").read_text())
    assert (dit["num_attention_heads"] * dit["attention_head_dim"], dit["num_layers"]) == (160, 4)


def test_the_cosine_schedule_warms_up_then_decays_to_zero():
    from diver_lite.experiments.fashion_mnist.prior_training import PriorConfig, lr_factor

    cosine, constant = PriorConfig(dit_steps=10000, dit_lr_schedule="cosine"), PriorConfig(dit_steps=10000)
    assert lr_factor(0, constant) == lr_factor(0, cosine) == 1 / 500
    assert lr_factor(9999, constant) == 1.0 and lr_factor(9999, cosine) < 1e-6
    assert abs(lr_factor(5000, cosine) - 0.5) < 1e-9


def test_the_reconstruction_psnr_covers_every_image_whatever_the_batch(tiny_models):
    """The PSNR is computed in batches for speed: the same squared errors over all images as in one batch."""
    from diver_lite.experiments.fashion_mnist.prior_training import reconstruction_psnr

    images = np.random.default_rng(0).random((7, 3, 32, 32), dtype=np.float32)
    whole = reconstruction_psnr(tiny_models.vae, images, batch=7)
    assert abs(reconstruction_psnr(tiny_models.vae, images, batch=3) - whole) < 1e-4
    # and it is a mean over all seven: the last, odd batch counts as much as the others
    first_six = reconstruction_psnr(tiny_models.vae, images[:6], batch=3)
    assert abs(first_six - whole) > 1e-3
