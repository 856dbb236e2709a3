"""`diver-lite evaluate`: cross-architecture accuracy of distilled or recovered sets on real test images."""

import json
import threading
from pathlib import Path

import click

from diver_lite.cli.data_options import max_size_option

# The students, listed without importing torch (so --help stays fast); experiments.fashion_mnist.students.STUDENTS
# has them.
STUDENT_NAMES = ("convnet", "mlp", "lenet", "resnet18", "mobilenetv2", "efficientnet", "shufflenetv2", "vit")


class SeedList(click.ParamType):
    """--seeds: N (0..N-1), A-B (inclusive) or a comma list, as a sorted tuple of distinct seeds."""

    name = "seeds"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        text = str(value).replace(" ", "")
        try:
            if "," in text:
                seeds = sorted({int(v) for v in text.split(",") if v})
            elif "-" in text[1:]:
                low, high = (int(v) for v in text.split("-", 1))
                seeds = list(range(low, high + 1))
            else:
                seeds = list(range(int(text)))
        except ValueError:
            self.fail(f"{value!r}: give N, A-B or A,B,... (e.g. 5, 5-9 or 0,2,4)", param, ctx)
        if not seeds or seeds[0] < 0 or len(seeds) > 1000:
            self.fail(f"{value!r}: between 1 and 1,000 seeds, none negative", param, ctx)
        return tuple(seeds)


EXAMPLE = """
\b
Examples:
  diver-lite evaluate runs/dm_ipc1.pt runs/dm_ipc1_recovered/dm_ipc1.pt -o runs/eval_ipc1
  diver-lite evaluate runs/dm_ipc1.pt -o runs/quick --students convnet,resnet18 --seeds 1 --epochs 50
  diver-lite evaluate runs/dm.pt runs/diver/dm.pt --protocol predd --jobs 2 -o runs/eval_predd
  diver-lite evaluate runs/dm.pt runs/diver/dm.pt --split val -o runs/eval_val   # choosing settings: not on test
\b
  # the ImageNet-subset protocol: a local val folder, one sub-folder per class in local label order
  diver-lite evaluate recovered/res_DM.pt -o runs/nette --test-folder imagenette/val --protocol predd
"""


@click.command(epilog=EXAMPLE, context_settings={"show_default": True})
@click.argument("sets", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Folder for results.json, results.md and results.png.")
@click.option("--protocol", type=click.Choice(["dc", "predd"]), default="dc",
              help="dc: DC/DM's evaluator (300 epochs, lr 0.01). predd: PReDD's (1000 epochs, lr 1e-3 / 1e-2 for "
              "MobileNetV2, EfficientNet, ShuffleNetV2, warm-up over half the epochs, instance-norm ResNet-18).")
@click.option("--students", default=",".join(STUDENT_NAMES),
              help="Comma-separated: convnet (the proxy), mlp, lenet, resnet18 (width 16), mobilenetv2 (x0.5), "
              "efficientnet (B0-style x0.5), shufflenetv2 (x0.5), vit. The cross-arch score averages vit, "
              "efficientnet, shufflenetv2, mobilenetv2, resnet18 (PReDD's).")
@click.option("--seeds", type=SeedList(), default="5", metavar="N|A-B|A,B,...",
              help="The student seeds: N (seeds 0..N-1), a range A-B (both included: extends an earlier evaluation "
              "with --import-runs) or a list.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the protocol's epochs.")
@click.option("--baseline", type=click.Path(path_type=Path), default=None,
              help="The set the others are compared with, paired by student and seed (mean difference, 95 % "
              "interval); default: the first SET.")
@click.option("--jobs", type=click.IntRange(min=1), default=1,
              help="Processes training students side by side (one thread each); results do not depend on it.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Fashion-MNIST IDX folder for the test split (default: Debian's package, else the subset), or "
              "the image folder the sets were distilled from: its --test-folder images are then padded as "
              "train-prior and distill padded it.")
@max_size_option
@click.option("--split", type=click.Choice(["test", "val"]), default="test",
              help="Fashion-MNIST's split the students are tested on. val: 5,000 images held out of the training "
              "split (500 per class, seed 0), for choosing settings (benchmarks/fashion_mnist_sweep.sh); report "
              "the chosen ones on test.")
@click.option("--resume", is_flag=True, help="Continue an interrupted evaluation in the same -o folder: finished "
              "student runs (kept as they end) are not trained again.")
@click.option("--import-runs", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="An earlier evaluation's results.json (e.g. one committed after its -o folder was lost): its runs "
              "of the same SET paths, students and seeds, under the same protocol and split, are kept instead of "
              "trained again; a SET whose images differ from the ones that file evaluated is refused (a "
              "results.json from before sets' fingerprints were recorded is trusted by path). Implies --resume.")
@click.option("--test-folder", type=click.Path(path_type=Path), default=None,
              help="Real test images as <class>/<image> (sorted class folders = local labels), resized to the "
              "set's size: the ImageNet-subset protocol with a local val folder.")
def evaluate(sets, out, protocol, students, seeds, epochs, baseline, jobs, data, max_size, split, resume,
             import_runs, test_folder):
    """Train each student only on each SET (hard labels, DSA, EMA with BN statistics re-estimated) and test it on
    real images. A SET whose path holds {seed} is one set per student seed (runs/diver/seed{seed}/dm.pt: seed s
    trains on runs/diver/seed<s>/dm.pt), so that recovery noise is replicated with the students; reports mean ± std
    over seeds, the cross-architecture score, and every set's paired difference against the baseline set."""
    from PIL import Image

    from diver_lite.experiments.datasets import is_image_folder, load_images
    from diver_lite.experiments.fashion_mnist import data as fm
    from diver_lite.layouts import read_set
    from diver_lite.errors import ConfigError, InputError
    from diver_lite.output_policy import check_output, mark
    from diver_lite.experiments.fashion_mnist.evaluate import EvalConfig, evaluate_sets
    from diver_lite.experiments.fashion_mnist.evaluate_report import chart, render_table
    from diver_lite.pipeline.run_state import fingerprint
    from diver_lite.core.prepare import from_unit, resize, to_unit
    from diver_lite.cli.evaluation_runs import check_imported_sets, config_record, imported_runs, kept_runs
    from diver_lite.cli.progress import step_bar
    from diver_lite.layouts.files import atomic_write

    names = tuple(s.strip() for s in students.split(",") if s.strip())
    unknown = sorted(set(names) - set(STUDENT_NAMES))
    if unknown or not names:
        raise ConfigError(f"unknown students {unknown}", f"choose from {', '.join(STUDENT_NAMES)}")
    resume = resume or import_runs is not None
    check_output(out, [*(p for s in sets for _, p in _per_seed(s, seeds)), test_folder, data], resume=resume,
                 resumable=True, replaceable=False)
    labels = [str(p) for p in sets]
    if len(set(labels)) != len(labels):
        raise ConfigError("a set is given twice", "name each set once")
    base = labels[0] if baseline is None else str(baseline)
    if base not in labels:
        raise ConfigError(f"--baseline {base} is not one of the sets", "give one of the SET paths as --baseline")
    cfg = EvalConfig.from_protocol(protocol, students=names, seeds=seeds,
                                   **({"epochs": epochs} if epochs else {}))
    imported, imported_keys = imported_runs(import_runs, cfg, split) if import_runs is not None else ({}, {})
    # (label, seed or None, set): a SET with {seed} in its path is read once per student seed.
    loaded = [(label, seed, read_set(path)) for label, p in zip(labels, sets)
              for seed, path in _per_seed(p, seeds)]
    size = loaded[0][2].images.shape[-1]
    if split != "test" and (test_folder is not None or is_image_folder(data)):
        raise ConfigError(f"--split {split} holds out Fashion-MNIST images", "drop --split with an image folder or "
                          "--test-folder (their own held-out images are the test split)")
    if is_image_folder(data):
        if test_folder is None:
            raise ConfigError(f"{data} is an image folder: it has no test split", "give --test-folder with real test "
                              "images of the same classes")
        test = load_images(test_folder, "test", max_size)
        test_x, test_y = from_unit(resize(test.images, size, antialias=True), "imagenet"), test.labels
    elif test_folder is not None:
        test = read_set(test_folder, layout="folder")
        test_x, test_y = from_unit(resize(to_unit(test.images, "unit"), size, antialias=True), "imagenet"), test.labels
    else:
        images, test_y, _ = fm.load(split, data)
        test_x = from_unit(resize(fm.to_images(images), size, antialias=True), "imagenet")
    classes = int(test_y.max()) + 1
    for label, _, dset in loaded:
        bad = sorted({int(c) for c in dset.hard_labels if not 0 <= c < classes})
        if bad:
            raise InputError(f"{label} has labels {bad[:5]} outside the test split's {classes} classes",
                             "evaluate a set distilled from the same data as the test split (or --test-folder)")
        unseen = sorted(set(int(c) for c in test_y) - {int(c) for c in dset.hard_labels})
        if unseen:   # a student cannot predict a class it never saw: its accuracy would say nothing
            raise InputError(f"the test split has classes {unseen[:5]} of which {label} holds no image",
                             "evaluate a set with every class of the test split (or a --test-folder of its "
                             "classes)")
    inputs, keys = {}, {}
    for label, seed, dset in loaded:
        if seed in (None, seeds[0]):
            click.echo(f"{label}: {len(dset)} images" + (f" (per seed, {len(seeds)} sets)" if seed is not None else ""),
                       err=True)
        x = from_unit(to_unit(dset.images, dset.pixel_space), "imagenet")
        entry = (resize(x if x.shape[1] == 3 else x.repeat(3, axis=1), size, antialias=True), dset.hard_labels)
        if seed is None:
            inputs[label], keys[label] = entry, fingerprint(dset)
        else:   # per seed: {seed: set}, and the fingerprints by seed (as JSON keys: strings)
            inputs.setdefault(label, {})[seed] = entry
            keys.setdefault(label, {})[str(seed)] = fingerprint(dset)
    check_imported_sets(import_runs, imported_keys, keys)
    mark(out, "evaluate")
    done, keep = kept_runs(out, cfg, keys, test_x, test_y)
    for item, accuracies in imported.items():
        if item[0] in keys and item[1] in names and item[2] in seeds and item not in done:
            done[item] = accuracies
            keep(item, accuracies)
    total = len(inputs) * len(names) * len(seeds)
    click.echo(f"{total} student runs ({len(done)} kept from before), protocol {protocol} ({cfg.epochs} epochs), "
               f"{jobs} process(es)", err=True)
    short = short_labels(list(inputs))
    import signal

    def terminated(signum, frame):     # SIGTERM ends the evaluation like Ctrl-C: finished runs kept, workers ended
        raise KeyboardInterrupt
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminated)
    with step_bar(total, "evaluate", "run", initial=len(done)) as update:
        finished = [len(done)]

        def progress(item, accuracies):
            keep(item, accuracies)
            finished[0] += 1
            update(finished[0], last=f"{short[item[0]]} {item[1]} {accuracies[0]:.1f}%")
        results = evaluate_sets(inputs, test_x, test_y, cfg, baseline=base if len(inputs) > 1 else None,
                                jobs=jobs, done=done, on_result=progress)
    config = config_record(cfg)
    record = json.dumps({"config": config, "split": split, "baseline": base, "fingerprints": keys,
                         "results": results}, indent=2)
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(record))   # never a truncated file
    table = render_table(results, cfg, base)
    if split == "val":
        table = (f"Tested on the validation split ({len(test_y):,} training images held out), not on the test "
                 "split.\n\n" + table)
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text(table))
    picture = Image.fromarray(chart(results, names))
    atomic_write(out / "results.png", lambda tmp: picture.save(tmp, format="PNG"), suffix=".png")
    click.echo(table)


SEED = "{seed}"


def _per_seed(path: Path, seeds: tuple[int, ...]) -> list[tuple[int | None, Path]]:
    """[(None, path)], or for a path with {seed} in it, [(s, the path with s in place of {seed})] for each seed."""
    if SEED not in str(path):
        return [(None, path)]
    return [(s, Path(str(path).replace(SEED, str(s)))) for s in seeds]


def short_labels(labels: list[str]) -> dict[str, str]:
    """{label: the fewest trailing path parts that tell it from the other labels} for the progress line: sets named
    dm.pt in four folders show as dm.pt's folder and name, not four times 'dm.pt'."""
    parts = {label: Path(label).parts or (label,) for label in labels}
    short = {}
    for label, mine in parts.items():
        others = [p for other, p in parts.items() if other != label]
        n = 1
        while n < len(mine) and any(p[-n:] == mine[-n:] for p in others):
            n += 1
        short[label] = "/".join(mine[-n:])
    return short
