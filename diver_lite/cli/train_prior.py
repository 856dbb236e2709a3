"""`diver-lite train-prior`: train a small prior (VAE + DiT) on Fashion-MNIST or an image folder, from a seed."""

import json
import time
from dataclasses import asdict
from pathlib import Path

import click

from diver_lite.cli.checkpoint_options import checkpoint_options
from diver_lite.cli.data_options import max_size_option

EXAMPLE = """
\b
Examples:
  diver-lite train-prior -o runs/prior_v2                    # prior v2 (about 1 h 40 min on one thread), then
  diver-lite train-prior -o runs/prior_v3 --continue-from runs/prior_v2 --dit-steps 15000 --dit-lr-schedule cosine
                                                  # the shipped default: v2's DiT 15,000 steps more (about 1 h 5 min)
  diver-lite train-prior -o runs/quick --vae-steps 50 --dit-steps 50 --classifier-epochs 1   # a smoke test
  diver-lite train-prior --data my_tiles/train --test-folder my_tiles/test -o runs/tiles_prior   # your own data
  diver-lite train-prior -o runs/prior_l --device cuda --dit-width 256 --dit-depth 8 --dit-steps 40000   # GPU
"""


@click.command(epilog=EXAMPLE, context_settings={"show_default": True})
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the model and card.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Fashion-MNIST: a folder with its IDX files (default: Debian's dataset-fashion-mnist, else the "
              "vendored subset). Your own data: an image folder <class>/<image> (any number of classes, square "
              "images up to --max-size, padded to a multiple of 8).")
@click.option("--test-folder", type=click.Path(path_type=Path), default=None,
              help="Real test images (<class>/<image>, the same classes) that judge a prior of an image folder; "
              "default: 10 % of each class of --data held out.")
@max_size_option
@click.option("--seed", type=click.IntRange(min=0), default=0)
@click.option("--vae-steps", type=click.IntRange(min=1), default=2000)
@click.option("--dit-steps", type=click.IntRange(min=1), default=14000)
@click.option("--dit-width", type=click.IntRange(min=32), default=128,
              help="The DiT's hidden size, a multiple of 32 (one attention head per 32; DiT-XL/2: 1152).")
@click.option("--dit-depth", type=click.IntRange(min=1), default=6,
              help="The DiT's number of blocks (DiT-XL/2: 28).")
@click.option("--dit-batch", type=click.IntRange(min=1), default=128)
@click.option("--dit-lr-schedule", type=click.Choice(["constant", "cosine"]), default="constant",
              help="The DiT's learning rate after its warm-up: constant, or a cosine down to zero at the last step.")
@click.option("--continue-from", "continue_from", type=click.Path(path_type=Path, exists=True, file_okay=False),
              default=None, help="A prior folder (train-prior's output) to go on from: its VAE is kept as it is and "
              "its DiT trains --dit-steps more from its weights (AdamW and the EMA start afresh). The DiT's size is "
              "the folder's; the data must be what it was trained on.")
@click.option("--device", default="auto", help="auto (CUDA when torch sees it), cpu, cuda or cuda:N. The judge's "
              "classifier trains on the CPU.")
@click.option("--classifier-epochs", type=click.IntRange(min=1), default=2,
              help="Epochs of the real-data ConvNet that judges the samples.")
@click.option("--samples-per-class", type=click.IntRange(min=1), default=100)
@checkpoint_options
def train_prior(out, data, test_folder, max_size, seed, vae_steps, dit_steps, dit_width, dit_depth, dit_batch,
                dit_lr_schedule, continue_from, device, classifier_epochs, samples_per_class, resume,
                checkpoint_every):
    """Train a small AutoencoderKL and a class-conditional learned-sigma DiTTransformer2DModel on Fashion-MNIST or
    an image folder, then measure them: VAE reconstruction PSNR and the accuracy of a real-data classifier on
    class-conditional samples. Writes a diffusers folder, MODEL_CARD.md, loss.png, samples.png and metrics.json."""
    from diver_lite.cli.progress import step_bar
    from diver_lite.errors import ConfigError
    from diver_lite.experiments.datasets import held_out, load_images
    from diver_lite.experiments.fashion_mnist.prior_training import PriorConfig, encode_all, train_dit, train_vae
    from diver_lite.models.source import EMBEDDED_DEFAULT
    from diver_lite.output_policy import MARK, check_output, mark
    from diver_lite.pipeline.checkpoint import Checkpoint, data_fingerprint
    from diver_lite.pipeline.engine import resolve_device
    from diver_lite.pipeline.report import torch_device_name

    if dit_width % 32:
        raise ConfigError(f"--dit-width {dit_width} is not a multiple of 32", "give 128, 192, 256, ... (32 per head)")
    dev = resolve_device(device)
    device_name = torch_device_name(dev)
    check_output(out, [data, test_folder, continue_from, EMBEDDED_DEFAULT], replaceable=False, resume=resume,
                 resumable=True)
    if resume and (out / "metrics.json").is_file():
        raise ConfigError(f"{out} holds a finished prior: there is nothing to resume", "pick another -o")
    train = load_images(data, "train", max_size)
    if train.kind == "fashion-mnist":
        if test_folder is not None:
            raise ConfigError("--test-folder judges a prior of an image folder", "give --data FOLDER, or drop it")
        test = load_images(data, "test")
    elif test_folder is not None:
        test = load_images(test_folder, "test", max_size)
        if test.classes != train.classes or test.size != train.size:
            raise ConfigError(f"--test-folder has classes {test.classes[:4]} at {test.size}², --data "
                              f"{train.classes[:4]} at {train.size}²", "give test images of the same classes and size")
    else:
        train, test = held_out(train, 0.1, seed)
    previous, dit_heads, previous_config = None, dit_width // 32, None
    if continue_from is not None:
        given = [f"--{n.replace('_', '-')}" for n in ("dit_width", "dit_depth", "vae_steps")
                 if click.get_current_context().get_parameter_source(n) != click.core.ParameterSource.DEFAULT]
        if given:
            raise ConfigError(f"{' and '.join(given)} with --continue-from: the DiT's size is the folder's and its VAE "
                              "is kept", f"drop {' and '.join(given)}")
        previous_config = _previous_config(continue_from)      # read now: a damaged file fails before training
        previous = _previous_prior(continue_from, train, dev)
        dit_config = previous.transformer.config
        dit_width, dit_depth = dit_config.num_attention_heads * dit_config.attention_head_dim, dit_config.num_layers
        dit_heads = dit_config.num_attention_heads     # its own, whatever the head size
    config = PriorConfig(seed=seed, vae_steps=vae_steps, dit_steps=dit_steps, image_size=train.size,
                         dit_hidden=dit_width, dit_heads=dit_heads, dit_depth=dit_depth, dit_batch=dit_batch,
                         dit_lr_schedule=dit_lr_schedule, continued_from=str(continue_from or ""))
    if previous is not None and previous.transformer.config.patch_size != config.dit_patch:
        raise ConfigError(f"{continue_from}'s DiT has patch {previous.transformer.config.patch_size}",
                          f"train-prior trains patch {config.dit_patch}; train a new prior instead")
    echo = lambda msg: click.echo(msg, err=True)  # noqa: E731
    echo(f"training on {train.source}, {device_name}" + (f", from {continue_from}" if previous else ""))
    mark(out, "train-prior")          # from here on an interrupted run can be resumed (--resume)
    same_run = asdict(config) | {"data": data_fingerprint(train.images, train.labels), "device": dev.type}
    checkpoints = {phase: Checkpoint(out / MARK / f"checkpoint-{phase}.pt", same_run, checkpoint_every)
                   for phase in ("vae", "dit")}
    for c in checkpoints.values():
        c.load() if resume else c.remove()     # one of other settings is refused now, before any training
    seconds = {}
    if previous is None:
        start = time.perf_counter()
        with step_bar(config.vae_steps, "VAE") as update:
            vae, vae_hist = train_vae(train.images, config, log=lambda s, loss: update(s + 1, loss=loss), device=dev,
                                      checkpoint=checkpoints["vae"])
        seconds["VAE"] = time.perf_counter() - start
    else:
        vae, vae_hist = previous.vae, []
    start = time.perf_counter()
    latents = encode_all(vae, train.images)
    with step_bar(config.dit_steps, "DiT") as update:
        dit, dit_hist = train_dit(latents, train.labels, config, train.num_classes,
                                  log=lambda s, m, v: update(s + 1, mse=m, vb=v),
                                  start=previous.transformer if previous else None, checkpoint=checkpoints["dit"])
    seconds["DiT"] = time.perf_counter() - start
    metrics = write_prior(out, dit, vae, config, vae_hist, dit_hist, seconds, train, test, classifier_epochs,
                          samples_per_class, echo, device=device_name, previous_config=previous_config)
    for c in checkpoints.values():      # a finished prior is its folder; the checkpoints would double its size
        c.remove()
    return metrics


def _previous_config(folder: Path) -> dict | None:
    """The training config in the --continue-from folder's metrics.json (None without one); a damaged file is
    refused here, before any training, not after it."""
    from diver_lite.errors import InputError

    path = folder / "metrics.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text()).get("config")
    except (ValueError, OSError, AttributeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is damaged ({type(e).__name__}): the new card could not say how the prior it "
                         "continues was trained", "restore that metrics.json, or delete it (the card then says "
                         "'unknown')") from None
    return config if isinstance(config, dict) else None


def _previous_prior(folder: Path, train, device):
    """The prior that --continue-from names, loaded in fp32 with its embedders untied (training ties its own), and
    checked against the data it is to go on with."""
    from diver_lite.errors import ConfigError
    from diver_lite.models.load import load_models

    models = load_models(folder, device=device, tie=False)     # both modules frozen, in eval mode
    if (models.image_size, models.num_classes) != (train.size, train.num_classes):
        raise ConfigError(f"{folder} is a prior of {models.num_classes} classes at {models.image_size}², the data "
                          f"has {train.num_classes} at {train.size}²", "continue from a prior of the same data")
    return models


def write_prior(out: Path, dit, vae, config, vae_hist, dit_hist, seconds, train, test, classifier_epochs,
                samples_per_class, echo, device: str, previous_config: dict | None = None) -> dict:
    """Save the models, judge them on `test` (experiments.datasets.LabelledImages) with a classifier trained on
    `train`, and write the card (its time line names `device`, what trained the models; `previous_config`: the
    training config of the prior it continued from, if any); returns the metrics."""
    import numpy as np
    from PIL import Image

    from diver_lite.experiments.fashion_mnist.prior_card import render_model_card
    from diver_lite.experiments.fashion_mnist.prior_training import evaluate_prior
    from diver_lite.experiments.fashion_mnist.students import train_classifier
    from diver_lite.layouts.files import atomic_write
    from diver_lite.models.diver_models import DIT_SCHEDULE, DiverModels
    from diver_lite.models.save import save_models
    from diver_lite.models.tying import tie_embedders
    from diver_lite.output_policy import mark
    from diver_lite.pipeline.report import image_grid, line_plot

    models = DiverModels(dit.eval(), vae.eval(), dict(DIT_SCHEDULE), str(out))
    save_models(models, out)
    mark(out, "train-prior")
    tie_embedders(models.transformer)
    start = time.perf_counter()
    classifier = train_classifier(train.images, train.labels, epochs=classifier_epochs, seed=config.seed,
                                  num_classes=train.num_classes)
    metrics, samples = evaluate_prior(models, test.images, test.labels, classifier, per_class=samples_per_class,
                                      seed=config.seed)
    seconds["evaluation"] = time.perf_counter() - start
    metrics.update(classes=list(train.classes), scaling_factor=models.scaling_factor, data=train.source,
                   parameters={"dit": sum(p.numel() for p in models.transformer.parameters()),
                               "vae": sum(p.numel() for p in models.vae.parameters())},
                   seconds={k: round(v, 1) for k, v in seconds.items()}, config=asdict(config),
                   device=device)
    if config.continued_from:
        metrics["continued_from_config"] = previous_config
    # Every file under a temporary name, metrics.json last: its presence says the run finished.
    history = json.dumps({"vae_loss": vae_hist, "dit_mse_vb": dit_hist})
    atomic_write(out / "history.json", lambda tmp: Path(tmp).write_text(history))
    # The VB term can go below zero (a Gaussian density at t = 0), so it stays out of the log-scale plot; its
    # values are in history.json.
    curves = {f"VAE loss ({len(vae_hist)} steps)": vae_hist} if vae_hist else {}   # none when the VAE was kept
    curves[f"DiT eps MSE ({len(dit_hist)} steps)"] = [m for m, _ in dit_hist]
    plot = Image.fromarray(line_plot(curves))
    atomic_write(out / "loss.png", lambda tmp: plot.save(tmp, format="PNG"), suffix=".png")
    per_row, n = min(samples_per_class, 16), train.num_classes
    rows = [samples[c * samples_per_class: c * samples_per_class + per_row] for c in range(n)]
    grid = Image.fromarray(image_grid(np.concatenate(rows), rows=n))
    atomic_write(out / "samples.png", lambda tmp: grid.save(tmp, format="PNG"), suffix=".png")
    card = render_model_card(config, metrics, train.source, seconds, train.kind)
    atomic_write(out / "MODEL_CARD.md", lambda tmp: Path(tmp).write_text(card))
    atomic_write(out / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=2)))
    echo(f"sample accuracy {metrics['sample_accuracy']:.1%} (classifier {metrics['classifier_real_test_accuracy']:.1%}"
         f" on real test images), VAE PSNR {metrics['vae_reconstruction_psnr_db']:.1f} dB -> {out}")
    return metrics
