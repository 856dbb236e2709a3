"""`diver-lite distill --method mtt`: expert trajectories (cached for reuse), trajectory matching, the MTT layout."""

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import click

# The paper's CIFAR-10 settings by IPC (syn_steps, expert_epochs, max_start_epoch, lr_lr); lr_img 1000, lr_teacher
# 0.01 for both. IPC above 10 takes the IPC 10 row.
PAPER = {1: (50, 2, 2, 1e-7), 10: (30, 2, 20, 1e-5)}


def mtt_options(f):
    options = [
        click.option("--experts", type=click.IntRange(min=1), default=5, help="MTT: expert trajectories (the paper: "
                     "100; 5 on a CPU thread)."),
        click.option("--width", type=click.IntRange(min=8), default=64, help="MTT: ConvNet-3 width (the paper: 128)."),
        click.option("--subset-size", type=click.IntRange(min=10), default=10000,
                     help="MTT: training images the experts see (class-balanced; the paper: all)."),
        click.option("--syn-steps", type=click.IntRange(min=1), default=None,
                     help="MTT: student steps per iteration.  [default: 50 at IPC 1, 30 at IPC >= 10 (the paper's)]"),
        click.option("--expert-epochs", type=click.IntRange(min=1), default=2, help="MTT: expert epochs matched."),
        click.option("--max-start-epoch", type=click.IntRange(min=1), default=None,
                     help="MTT: latest expert epoch a student starts from.  [default: 2 at IPC 1, 20 at IPC >= 10]"),
        click.option("--lr-img", type=click.FloatRange(min=0, min_open=True), default=1000.0, help="MTT: image lr."),
        click.option("--experts-dir", type=click.Path(path_type=Path), default=None,
                     help="MTT: keep the expert trajectories here and reuse them when the data and settings match "
                     "(the paper's buffer).  [default: OUT/.diver-lite/experts]"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def run_mtt(out: Path, train, ipc: int, iterations: int | None, seed: int, o: dict, overwrite: bool,
            inputs: list, resume: bool = False, checkpoint_every: float = 60.0) -> None:
    """Distil `train` (experiments.datasets.LabelledImages) with MTT into the MTT layout under folder `out`."""
    import numpy as np
    import torch

    from diver_lite.cli.progress import step_bar
    from diver_lite.experiments.fashion_mnist.mtt import MTTConfig, distill_mtt
    from diver_lite.layouts.files import atomic_write
    from diver_lite.layouts.tensors import atomic_torch_save
    from diver_lite.output_policy import check_output, mark

    from diver_lite.errors import ConfigError
    from diver_lite.output_policy import MARK
    from diver_lite.pipeline.checkpoint import Checkpoint, data_fingerprint

    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other", "pass only one of them")
    check_output(out, inputs, overwrite, resume=resume, resumable=True,
                 what="-o folder (MTT writes images_best.pt and labels_best.pt there)")
    if resume and (out / "mtt.json").is_file():
        raise ConfigError(f"{out} holds a finished MTT run: there is nothing to resume",
                          "pass --overwrite to distil it again, or pick another -o")
    syn_steps, expert_epochs, max_start, lr_lr = PAPER[1 if ipc < 10 else 10]
    cfg = MTTConfig(width=o["width"], num_experts=o["experts"], iterations=iterations or (500 if ipc < 10 else 200),
                    syn_steps=o["syn_steps"] or syn_steps, expert_epochs=o["expert_epochs"],
                    max_start_epoch=o["max_start_epoch"] or max_start, lr_img=o["lr_img"], lr_lr=lr_lr, seed=seed)
    cfg = replace(cfg, train_epochs=cfg.max_start_epoch + cfg.expert_epochs)   # only these epochs are ever read
    x, y = _balanced(train.images, train.labels, o["subset_size"], seed)
    experts_dir = o["experts_dir"] or out / ".diver-lite" / "experts"
    _check_experts_dir(experts_dir, inputs)                   # before the experts are trained, not after
    mark(out, "distill")
    checkpoint = Checkpoint(out / MARK / "checkpoint.pt", asdict(cfg) | {"ipc": ipc, "data": data_fingerprint(x, y)},
                            checkpoint_every)
    if not resume:
        checkpoint.remove()
    checkpoint.load()               # one of other settings is refused now, before the experts train
    experts = _experts(experts_dir, x, y, cfg, train.source)
    with step_bar(cfg.iterations, "MTT", "it") as update:
        syn, labels, lr, losses = distill_mtt(x, y, experts, ipc, cfg, checkpoint=checkpoint,
                                              log=lambda i, loss, lr: update(i + 1, loss=loss, lr=lr))
    atomic_torch_save(torch.from_numpy(syn), out / "images_best.pt")
    atomic_torch_save(torch.from_numpy(labels), out / "labels_best.pt")
    record = json.dumps({
        "method": "MTT", "ipc": ipc, "config": asdict(cfg), "learned_lr": lr, "source": train.source,
        "classes": list(train.classes), "images_seen_by_experts": int(len(x)), "first_loss": losses[0],
        "last_loss_mean_of_10": float(np.mean(losses[-10:])), "pixel_space": "imagenet"}, indent=2)
    atomic_write(out / "mtt.json", lambda tmp: Path(tmp).write_text(record))
    checkpoint.remove()
    click.echo(f"Wrote {len(labels)} images (MTT, IPC {ipc}, learned lr {lr:.4g}, matching loss {losses[0]:.3f} -> "
               f"{np.mean(losses[-10:]):.3f}) -> {out}")


def _balanced(images, labels, n: int, seed: int):
    """At most n images, the same number from each class (a seeded pick)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = max(1, n // len(classes))
    picks = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per] for c in classes]))
    return images[picks], labels[picks]


def _check_experts_dir(folder: Path, inputs: list) -> None:
    """--experts-dir must be a folder (or not exist yet), writable, and outside the data it is trained from."""
    import os

    from diver_lite.errors import OutputError
    from diver_lite.output_policy import check_outside_inputs

    check_outside_inputs(folder, inputs, what="--experts-dir")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"--experts-dir {folder} is a file", "give a folder for the expert trajectories")
    probe = folder if folder.is_dir() else next((p for p in folder.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK):
        raise OutputError(f"--experts-dir {folder} cannot be written", "give a writable folder")


def _experts(folder: Path, x, y, cfg, source: str) -> list:
    """The cached trajectories when the data and the expert settings match, else trained and cached."""
    from safetensors.torch import load_file, save_file

    from diver_lite.cli.progress import step_bar
    from diver_lite.experiments.fashion_mnist.mtt import train_experts
    from diver_lite.layouts.files import atomic_write

    h = hashlib.sha256(json.dumps({k: getattr(cfg, k) for k in ("width", "train_epochs", "lr_teacher",
                                                                 "batch_train", "seed")}).encode())
    h.update(x.tobytes()[:1 << 22] + y.tobytes())
    key = h.hexdigest()[:16]
    path = folder / f"experts-{key}.safetensors"
    stored = {}
    if path.is_file():
        try:
            stored = load_file(str(path))
        except Exception as e:  # noqa: BLE001  (a cache cut off by a kill: train again, never fail on it)
            click.echo(f"Warning: the experts cache {path} is damaged ({type(e).__name__}); training them again",
                       err=True)
        if len(stored) >= cfg.num_experts:
            click.echo(f"reusing {cfg.num_experts} expert trajectories from {path}", err=True)
            return [stored[f"expert{k}"] for k in range(cfg.num_experts)]
    total = cfg.num_experts * cfg.train_epochs
    with step_bar(total, "experts", "epoch") as update:
        experts = train_experts(x, y, cfg, log=lambda e, epoch, loss: update(e * cfg.train_epochs + epoch + 1,
                                                                             loss=loss))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file({f"expert{k}": t.contiguous() for k, t in enumerate(experts)}, str(tmp),
                                             metadata={"source": source, "settings": key}), suffix=".safetensors")
    return experts
