"""`diver-lite distill`: stage 1 on Fashion-MNIST or an image folder, DM or the random-real baseline."""

from pathlib import Path

import click

from diver_lite.cli.checkpoint_options import checkpoint_options
from diver_lite.cli.data_options import max_size_option
from diver_lite.cli.distill_mtt import mtt_options, run_mtt

EXAMPLE = """
\b
Examples:
  diver-lite distill -o runs/dm_ipc1.pt --ipc 1                       # DM, 200 iterations
  diver-lite distill -o runs/real_ipc10.pt --ipc 10 --method random-real
  diver-lite distill -o runs/mtt_ipc1 --ipc 1 --method mtt           # MTT layout: a folder (about an hour)
  diver-lite recover runs/dm_ipc1.pt -o runs/dm_ipc1_recovered         # stage 2, the embedded prior
"""


@click.command(epilog=EXAMPLE, context_settings={"show_default": True})
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="The distilled set: a .pt file in the DM layout ({'data': [[X, y]], 'res': 32}), or for --method "
              "mtt a folder in the MTT layout (images_best.pt, labels_best.pt).")
@click.option("--method", type=click.Choice(["dm", "mtt", "random-real"]), default="dm")
@click.option("--ipc", type=click.IntRange(min=1), default=1, help="Images per class (1, 10, 50, ...).")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="DM or MTT iterations.  [default: 200 for DM; MTT 500 at IPC 1, 200 at IPC >= 10 (the paper: "
              "5000)]")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Fashion-MNIST: a folder with its IDX files (default: Debian's package, else the vendored "
              "subset). Your own data: an image folder <class>/<image> (square images up to --max-size).")
@max_size_option
@click.option("--seed", type=click.IntRange(min=0), default=0)
@click.option("--include-validation", is_flag=True,
              help="Fashion-MNIST: distil from every training image. By default the validation split (what "
              "`evaluate --split val` tests on) is held out of the images distilled from and of MTT's experts.")
@click.option("--overwrite", is_flag=True)
@mtt_options
@checkpoint_options
def distill(out, method, ipc, iterations, data, max_size, seed, include_validation, overwrite, resume,
            checkpoint_every, **mtt):
    """Distil Fashion-MNIST (3-channel 32x32) or an image folder into IPC images per class with Distribution
    Matching and DSA, with Matching Training Trajectories (expert ConvNets, then a learnable lr; the paper's
    settings, scaled down to a CPU thread where the options say), or pick IPC real images per class at random
    (the baseline)."""
    import torch

    from diver_lite.experiments.fashion_mnist import data as fm
    from diver_lite.layouts.tensors import atomic_torch_save
    from diver_lite.experiments.fashion_mnist.distill import distill_dm, random_real
    from diver_lite.errors import ConfigError, OutputError
    from diver_lite.output_policy import check_outside_inputs
    from diver_lite.pipeline.checkpoint import Checkpoint, data_fingerprint
    from diver_lite.cli.progress import step_bar

    if method == "mtt":
        train = stage1_pool(data, max_size, include_validation)
        _check_ipc(train, ipc)
        return run_mtt(out, train, ipc, iterations, seed, mtt, overwrite,
                       [data if data is not None else fm.DEBIAN_ROOT], resume, checkpoint_every)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other", "pass only one of them")
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists" + (" (a finished run: nothing to resume)" if resume else ""),
                          "pass --overwrite or pick another -o")
    if out.exists() and not _written_by_distill(out):
        raise OutputError(f"{out} exists and was not written by diver-lite distill",
                          "--overwrite only replaces an earlier distilled set: pick another -o")
    check_outside_inputs(out, [data if data is not None else fm.DEBIAN_ROOT])
    if out.suffix != ".pt":
        raise ConfigError(f"-o {out} should end in .pt (the DM layout)", "e.g. -o runs/dm_ipc1.pt")
    train = stage1_pool(data, max_size, include_validation)
    x, labels, source = train.images, train.labels, train.source
    _check_ipc(train, ipc)
    iterations = iterations or 200
    # An interrupted DM run keeps its state beside -o (a hidden file), removed once the set is written.
    checkpoint = Checkpoint(out.parent / f".{out.name}.checkpoint", {"method": method, "ipc": ipc, "seed": seed,
                            "iterations": iterations, "data": data_fingerprint(x, labels)}, checkpoint_every)
    if method == "dm" and checkpoint.path.is_file() and not resume:
        if not overwrite:
            raise OutputError(f"an interrupted run left {checkpoint.path}", "pass --resume to go on with it, or "
                              "--overwrite to start afresh")
        checkpoint.remove()
    if method == "dm" and resume:
        checkpoint.load()           # one of other settings is refused now, before the progress bar
    if method == "dm":
        out.parent.mkdir(parents=True, exist_ok=True)
        with step_bar(iterations, "DM", "it") as update:
            syn, y, losses = distill_dm(x, labels, ipc, iterations, seed,
                                        log=lambda i, loss: update(i + 1, loss=loss), checkpoint=checkpoint)
        info = {"method": "DM", "iterations": iterations, "final_loss": losses[-1]}
    else:
        syn, y = random_real(x, labels, ipc, seed)
        info = {"method": "random-real"}
    obj = {"data": [[torch.from_numpy(syn), torch.from_numpy(y)]], "res": int(syn.shape[-1]),
           "source": (f"Fashion-MNIST train ({source}), 3x32x32, ImageNet-normalised" if train.kind == "fashion-mnist"
                      else f"image folder {source}, 3x{train.size}x{train.size}, ImageNet-normalised"),
           "classes": list(train.classes), "written_by": "diver-lite distill",
           "ipc": ipc, "seed": seed, "validation_held_out": train.kind == "fashion-mnist" and not include_validation,
           **info}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(obj, out)
    checkpoint.remove()
    click.echo(f"Wrote {len(y)} images ({method}, IPC {ipc}) -> {out}")


def stage1_pool(data, max_size: int, include_validation: bool):
    """The images a stage-1 method distils from: Fashion-MNIST's training split without its validation split
    (unless `include_validation`), or the whole image folder (which has no validation split)."""
    from dataclasses import replace

    import numpy as np

    from diver_lite.experiments.datasets import load_images
    from diver_lite.experiments.fashion_mnist.data import validation_indices

    train = load_images(data, "train", max_size)
    if train.kind != "fashion-mnist" or include_validation:
        return train
    keep = np.setdiff1d(np.arange(len(train.labels)), validation_indices(train.labels))
    return replace(train, images=train.images[keep], labels=train.labels[keep],
                   source=f"{train.source}, without the {len(train.labels) - len(keep)} validation images")


def _written_by_distill(path) -> bool:
    """An earlier `diver-lite distill` output: a DM dict with the method and source this command writes."""
    from diver_lite.layouts.tensors import load_tensors
    from diver_lite.errors import InputError

    try:
        obj = load_tensors(path)
    except InputError:
        return False
    return isinstance(obj, dict) and "method" in obj and (obj.get("written_by") == "diver-lite distill"
                                                          or str(obj.get("source", "")).startswith("Fashion-MNIST"))


def _check_ipc(train, ipc: int) -> None:
    import numpy as np

    from diver_lite.errors import ConfigError

    counts = np.bincount(train.labels, minlength=train.num_classes)
    if ipc > min(counts):
        raise ConfigError(f"--ipc {ipc} exceeds the {min(counts)} images of the smallest class in {train.source}",
                          "lower --ipc or use the full data set")
