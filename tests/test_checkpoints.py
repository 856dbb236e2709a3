"""Long work is not lost: train-prior (VAE and DiT), DM and MTT distillation save their whole state as they go, and
a run that was interrupted goes on with --resume and ends bit for bit where an uninterrupted run ends. A
checkpoint of other settings is refused, never resumed; a finished run is not 'resumed' into."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import assert_one_line_error
from diver_lite.cli.main import cli
from diver_lite.errors import ConfigError
from diver_lite.experiments.fashion_mnist import data as fm
from diver_lite.pipeline.checkpoint import Checkpoint


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, saves: int):
    """Make the `saves`-th checkpoint save the last thing the run does (as a kill right after it would)."""
    real, count = Checkpoint.save, [0]

    def save(self, state):
        real(self, state)
        count[0] += 1
        if count[0] == saves:
            raise Interrupted
    monkeypatch.setattr(Checkpoint, "save", save)
    return lambda: monkeypatch.setattr(Checkpoint, "save", real)


def images_and_labels(n=40, size=16):
    rng = np.random.default_rng(0)
    return rng.random((n, 3, size, size), dtype=np.float32), np.arange(n) % 4


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("loop", ["vae", "dit", "dm", "mtt"])
def test_every_training_loop_resumes_bit_for_bit(tmp_path, monkeypatch, loop):
    from diver_lite.experiments.fashion_mnist.distill import distill_dm
    from diver_lite.experiments.fashion_mnist.mtt import MTTConfig, distill_mtt, train_experts
    from diver_lite.experiments.fashion_mnist.prior_training import PriorConfig, train_dit, train_vae

    x, y = images_and_labels()
    prior = PriorConfig(seed=0, vae_steps=7, dit_steps=7, image_size=16, dit_hidden=64, dit_heads=2, dit_depth=1,
                        dit_batch=8, vae_batch=8)
    mtt = MTTConfig(width=16, num_experts=2, train_epochs=3, batch_train=8, iterations=5, syn_steps=3,
                    expert_epochs=1, max_start_epoch=1)
    experts = train_experts(x, y, mtt) if loop == "mtt" else None
    latents = torch.randn(40, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    run = {"vae": lambda ck: train_vae(x, prior, checkpoint=ck),
           "dit": lambda ck: train_dit(latents, y, prior, 4, checkpoint=ck),
           "dm": lambda ck: distill_dm(x, y, 2, iterations=5, batch_real=8, width=16, checkpoint=ck),
           "mtt": lambda ck: distill_mtt(x, y, experts, 2, mtt, checkpoint=ck)}[loop]
    whole = run(None)
    restore = interrupt_after(monkeypatch, 3)
    with pytest.raises(Interrupted):
        run(Checkpoint(tmp_path / "c.pt", {"run": 1}, every_s=0))
    restore()
    resumed = run(Checkpoint(tmp_path / "c.pt", {"run": 1}, every_s=0))
    if loop in ("vae", "dit"):
        assert same_state(whole[0].state_dict(), resumed[0].state_dict()) and whole[1] == resumed[1]
    else:
        assert np.array_equal(whole[0], resumed[0]) and whole[-1] == resumed[-1]
    with pytest.raises(ConfigError, match="other settings"):
        run(Checkpoint(tmp_path / "c.pt", {"run": 2}, every_s=0))


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_an_interrupted_dm_distillation_goes_on_with_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "absent")          # the vendored subset
    args = ["distill", "--method", "dm", "--ipc", "1", "--iterations", "3", "--checkpoint-every", "0"]
    assert invoke(*args, "-o", tmp_path / "whole.pt").exit_code == 0
    restore = interrupt_after(monkeypatch, 2)
    killed = invoke(*args, "-o", tmp_path / "dm.pt")
    restore()
    assert isinstance(killed.exception, Interrupted) and not (tmp_path / "dm.pt").exists()
    assert_one_line_error(invoke(*args, "-o", tmp_path / "dm.pt"), 2, "pass --resume")
    assert_one_line_error(invoke(*args, "-o", tmp_path / "dm.pt", "--resume", "--seed", "1"), 2, "seed")
    resumed = invoke(*args, "-o", tmp_path / "dm.pt", "--resume")
    assert resumed.exit_code == 0, resumed.output
    read = lambda p: torch.load(p, weights_only=True)["data"][0][0]    # noqa: E731
    assert torch.equal(read(tmp_path / "whole.pt"), read(tmp_path / "dm.pt"))
    assert not list(tmp_path.glob(".*checkpoint"))                    # removed once the set is written
    assert_one_line_error(invoke(*args, "-o", tmp_path / "dm.pt", "--resume"), 2, "nothing to resume")


def test_an_interrupted_train_prior_goes_on_with_resume_and_ends_where_a_whole_run_ends(tmp_path, monkeypatch):
    from diver_lite.models.load import load_models

    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):                         # a small image folder: the VAE's evaluation takes seconds
        (tmp_path / "data" / c).mkdir(parents=True)
        for k in range(10):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "data" / c / f"{k}.png")
    args = ["train-prior", "--data", tmp_path / "data", "--vae-steps", "4", "--dit-steps", "4", "--dit-width", "32", "--dit-depth", "1",
            "--device", "cpu", "--classifier-epochs", "1", "--samples-per-class", "1", "--checkpoint-every", "0"]
    assert invoke(*args, "-o", tmp_path / "whole").exit_code == 0
    restore = interrupt_after(monkeypatch, 6)               # the VAE finished (4 saves), the DiT halfway
    killed = invoke(*args, "-o", tmp_path / "p")
    restore()
    assert isinstance(killed.exception, Interrupted) and not (tmp_path / "p" / "metrics.json").exists()
    assert_one_line_error(invoke(*args, "-o", tmp_path / "p"), 2, "--resume")
    resumed = invoke(*args, "-o", tmp_path / "p", "--resume")
    assert resumed.exit_code == 0, resumed.output
    whole, again = load_models(tmp_path / "whole"), load_models(tmp_path / "p")
    assert same_state(whole.transformer.state_dict(), again.transformer.state_dict())
    assert same_state(whole.vae.state_dict(), again.vae.state_dict())
    assert not list((tmp_path / "p").rglob("checkpoint-*.pt"))
    assert_one_line_error(invoke(*args, "-o", tmp_path / "p", "--resume"), 2, "nothing to resume")
