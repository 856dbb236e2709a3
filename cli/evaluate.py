"""`diver-lite evaluate`: cross-architecture accuracy of distilled or recovered sets on real test images."""

import json
from pathlib import Path

import click

EXAMPLE = """
\b
Examples:
  diver-lite evaluate runs/dm_ipc1.pt runs/dm_ipc1_recovered/dm_ipc1.pt -o runs/eval_ipc1
  diver-lite evaluate runs/dm_ipc1.pt -o runs/quick --students convnet,resnet18 --seeds 1 --epochs 50
\b
  # the ImageNet-subset protocol: a local val folder, one sub-folder per class in local label order
  diver-lite evaluate recovered/res_DM.pt -o runs/nette --test-folder imagenette/val --epochs 1000
"""


@click.command(epilog=EXAMPLE, context_settings={"show_default": True})
@click.argument("sets", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Folder for results.json, results.md and results.png.")
@click.option("--students", default="convnet,mlp,lenet,resnet18,mobilenetv2,vit",
              help="Comma-separated: convnet (the proxy), mlp, lenet, resnet18 (width 16), mobilenetv2 (x0.5), vit.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, help="Runs per student.")
@click.option("--epochs", type=click.IntRange(min=1), default=300, help="300 as DC/DM (1000 optional).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Fashion-MNIST IDX folder for the test split; default: Debian's package, else the subset.")
@click.option("--test-folder", type=click.Path(path_type=Path), default=None,
              help="Real test images as <class>/<image> (sorted class folders = local labels), resized to the "
              "set's size: the ImageNet-subset protocol with a local val folder.")
def evaluate(sets, out, students, seeds, epochs, data, test_folder):
    """Train each student only on each SET (hard labels, DSA, EMA) and test it on real images; reports mean ± std
    over seeds and the cross-architecture score (mean over all students but ConvNet)."""
    from PIL import Image

    from diver_lite import fashion_mnist as fm
    from diver_lite.data import read_set
    from diver_lite.errors import ConfigError, InputError, OutputError
    from diver_lite.evaluate import EvalConfig, bar_chart, evaluate_set, render_table
    from diver_lite.prepare import from_unit, resize, to_unit
    from diver_lite.students import STUDENTS

    names = tuple(s.strip() for s in students.split(",") if s.strip())
    unknown = sorted(set(names) - set(STUDENTS))
    if unknown or not names:
        raise ConfigError(f"unknown students {unknown}", f"choose from {', '.join(STUDENTS)}")
    if out.is_dir() and any(out.iterdir()):
        raise OutputError(f"output folder {out} is not empty", "pick another -o")
    cfg = EvalConfig(students=names, seeds=tuple(range(seeds)), epochs=epochs)
    loaded = [(str(p), read_set(p)) for p in sets]
    size = loaded[0][1].images.shape[-1]
    if test_folder is not None:
        test = read_set(test_folder, layout="folder")
        test_x, test_y = from_unit(resize(to_unit(test.images, "unit"), size, antialias=True), "imagenet"), test.labels
    else:
        images, test_y, _ = fm.load("test", data)
        test_x = from_unit(resize(fm.to_images(images), size, antialias=True), "imagenet")
    classes = int(test_y.max()) + 1
    for label, dset in loaded:
        bad = sorted({int(c) for c in dset.hard_labels if not 0 <= c < classes})
        if bad:
            raise InputError(f"{label} has labels {bad[:5]} outside the test split's {classes} classes",
                             "evaluate a set distilled from the same data as the test split (or --test-folder)")
    results = {}
    for label, dset in loaded:
        click.echo(f"{label}: {len(dset)} images", err=True)
        x = from_unit(to_unit(dset.images, dset.pixel_space), "imagenet")
        x = resize(x if x.shape[1] == 3 else x.repeat(3, axis=1), size, antialias=True)
        results[label] = evaluate_set(x, dset.hard_labels, test_x, test_y, cfg, log=lambda m: click.echo(
            f"  {m}", err=True))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v
                                                             in cfg.__dict__.items()}, "results": results}, indent=2))
    table = render_table(results, cfg)
    (out / "results.md").write_text(table)
    Image.fromarray(bar_chart(results, names)).save(out / "results.png")
    click.echo(table)
