"""`diver-lite train-prior`: train the embedded default prior (small VAE + DiT) on Fashion-MNIST, from a seed."""

import json
import time
from dataclasses import asdict
from pathlib import Path

import click

EXAMPLE = """
\b
Examples:
  diver-lite train-prior -o runs/prior                       # the shipped default (about an hour on one thread)
  diver-lite train-prior -o runs/quick --vae-steps 50 --dit-steps 50 --classifier-epochs 1   # a smoke test
"""


@click.command(epilog=EXAMPLE, context_settings={"show_default": True})
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the model and card.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Folder with the Fashion-MNIST IDX files; default: Debian's dataset-fashion-mnist, else the "
              "vendored subset.")
@click.option("--seed", type=click.IntRange(min=0), default=0)
@click.option("--vae-steps", type=click.IntRange(min=1), default=1500)
@click.option("--dit-steps", type=click.IntRange(min=1), default=10000)
@click.option("--classifier-epochs", type=click.IntRange(min=1), default=2,
              help="Epochs of the real-data ConvNet that judges the samples.")
@click.option("--samples-per-class", type=click.IntRange(min=1), default=100)
def train_prior(out, data, seed, vae_steps, dit_steps, classifier_epochs, samples_per_class):
    """Train a small AutoencoderKL and a class-conditional learned-sigma DiTTransformer2DModel on Fashion-MNIST,
    then measure them: VAE reconstruction PSNR and the accuracy of a real-data classifier on class-conditional
    samples. Writes a diffusers folder, MODEL_CARD.md, loss.png, samples.png and metrics.json."""
    from diver_lite import fashion_mnist as fm
    from diver_lite.output_policy import check_output

    from .progress import step_bar
    from diver_lite.prior_training import PriorConfig, encode_all, train_dit, train_vae

    check_output(out, [data])
    config = PriorConfig(seed=seed, vae_steps=vae_steps, dit_steps=dit_steps)
    images, labels, source = fm.load("train", data)
    echo = lambda msg: click.echo(msg, err=True)  # noqa: E731
    seconds = {}
    start = time.perf_counter()
    with step_bar(config.vae_steps, "VAE") as update:
        vae, vae_hist = train_vae(fm.to_images(images), config, log=lambda s, loss: update(s + 1, loss=loss))
    seconds["VAE"] = time.perf_counter() - start
    start = time.perf_counter()
    latents = encode_all(vae, fm.to_images(images))
    with step_bar(config.dit_steps, "DiT") as update:
        dit, dit_hist = train_dit(latents, labels, config, log=lambda s, m, v: update(s + 1, mse=m, vb=v))
    seconds["DiT"] = time.perf_counter() - start
    write_prior(out, dit, vae, config, vae_hist, dit_hist, seconds, source, data, classifier_epochs,
                samples_per_class, echo, train=(images, labels))


def write_prior(out: Path, dit, vae, config, vae_hist, dit_hist, seconds, source, data, classifier_epochs,
                samples_per_class, echo, train=None) -> dict:
    """Save the models, judge them, and write the card; returns the metrics. `train`: the training split's
    (images, labels) when already loaded."""
    import numpy as np
    from PIL import Image

    from diver_lite import fashion_mnist as fm
    from diver_lite.models import DIT_SCHEDULE, DiverModels, save_models, tie_embedders
    from diver_lite.output_policy import mark
    from diver_lite.prior_training import evaluate_prior, render_model_card
    from diver_lite.report import image_grid, line_plot
    from diver_lite.students import train_classifier

    models = DiverModels(dit.eval(), vae.eval(), dict(DIT_SCHEDULE), str(out))
    save_models(models, out)
    mark(out, "train-prior")
    tie_embedders(models.transformer)
    start = time.perf_counter()
    images, labels = train if train is not None else fm.load("train", data)[:2]
    test_images, test_labels, _ = fm.load("test", data)
    classifier = train_classifier(fm.to_images(images), labels, epochs=classifier_epochs, seed=config.seed)
    metrics, samples = evaluate_prior(models, fm.to_images(test_images), test_labels, classifier,
                                      per_class=samples_per_class, seed=config.seed)
    seconds["evaluation"] = time.perf_counter() - start
    metrics.update(classes=list(fm.CLASSES), scaling_factor=models.scaling_factor, data=source,
                   parameters={"dit": sum(p.numel() for p in models.transformer.parameters()),
                               "vae": sum(p.numel() for p in models.vae.parameters())},
                   seconds={k: round(v, 1) for k, v in seconds.items()}, config=asdict(config))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "history.json").write_text(json.dumps({"vae_loss": vae_hist, "dit_mse_vb": dit_hist}))
    # The VB term can go below zero (a Gaussian density at t = 0), so it stays out of the log-scale plot; its
    # values are in history.json.
    Image.fromarray(line_plot({f"VAE loss ({len(vae_hist)} steps)": vae_hist,
                               f"DiT eps MSE ({len(dit_hist)} steps)": [m for m, _ in dit_hist]})).save(out / "loss.png")
    per_row = min(samples_per_class, 16)
    rows = [samples[c * samples_per_class: c * samples_per_class + per_row] for c in range(10)]
    Image.fromarray(image_grid(np.concatenate(rows), rows=10)).save(out / "samples.png")
    (out / "MODEL_CARD.md").write_text(render_model_card(config, metrics, source, seconds))
    echo(f"sample accuracy {metrics['sample_accuracy']:.1%} (classifier {metrics['classifier_real_test_accuracy']:.1%}"
         f" on real test images), VAE PSNR {metrics['vae_reconstruction_psnr_db']:.1f} dB -> {out}")
    return metrics
