"""`diver-lite recover`: distilled set in, recovered set out."""

import contextlib
import signal
import threading
from pathlib import Path

import click

from diver_lite.cli.dataclass_options import SectionedCommand, dataclass_options, given, section_option
from diver_lite.cli.recover_settings import resolve_config
from diver_lite.cli.runtime_options import (BATCH_SIZE, RUNTIME_HELP, optgroup_runtime, runtime_from_options,
                                            runtime_names)
from diver_lite.core.config import METHOD_PRESETS, PRESET_TABLES, RecoverConfig
from diver_lite.core.prepare import PIXEL_SPACES
from diver_lite.errors import ConfigError, InputError
from diver_lite.pipeline.engine import MODEL_FIELDS, RUN_ENGINE_FIELDS, EngineSpec
from diver_lite.pipeline.run import RunOptions

EXAMPLE = """
\b
Examples:
  # the shipped DM demo set with the embedded default prior (Fashion-MNIST)
  diver-lite recover examples/demo_dm_ipc1.pt -o out/demo
\b
  # a DM set of ImageNette at IPC 1 with DiT-XL/2 from a local diffusers folder
  diver-lite recover res_DM_imagenette_ConvNet_1ipc.pt -o out/dm --model ./DiT-XL-2-256 \\
      --subset imagenette --method dm --ipc 1
\b
  # DiT-XL/2 by name (downloaded once, then cached; HF_HUB_OFFLINE=1: cache only)
  diver-lite recover mtt_run/ -o out/mtt --model DiT-XL/2-256 --subset imagewoof
\b
  # the original checkpoint; the VAE defaults to DiT's stabilityai/sd-vae-ft-mse
  diver-lite recover mtt_run/ -o out/mtt --model DiT-XL-2-256x256.pt

  # ONNX Runtime, on graphs from `diver-lite export` (npz and image folders need no torch)
  diver-lite recover set.npz -o out/ort --backend onnxruntime --onnx onnx/
\b
  # DiT-XL/2 within 1.5 GB of GPU memory (the plan is chosen and printed), or int8 on a CPU
  diver-lite recover set.pt -o out/small --model ./DiT-XL-2-256 --vram-budget 1.5
  diver-lite recover set.pt -o out/int8 --model ./DiT-XL-2-256 --precision int8 --device cpu
"""


def _class_map(path: Path | None):
    if path is None:
        return None
    from diver_lite.core.classmap import parse_class_map_json

    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"cannot read class map {path}: {e.strerror}", "check the path")
    return parse_class_map_json(text, str(path))


IO, MODEL, RUN = "Input and output", "Model and backend", "Run"


@click.command(cls=SectionedCommand, epilog=EXAMPLE + RUNTIME_HELP, context_settings={"show_default": True})
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@section_option("-o", "--out", type=click.Path(path_type=Path), required=True, section=IO,
                help="Output folder: the recovered set in the input's layout, png/, grid.png, report.json/.md, "
                "run.toml.")
@section_option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None, section=IO,
                help="Settings from a TOML file (a run's run.toml repeats that run): the command line wins over "
                "the file, the file over --method's preset, the preset over the defaults.")
@dataclass_options(RunOptions, only=("layout", "experiment", "subset", "max_png", "resume", "overwrite"))
@section_option("--pixel-space", type=click.Choice(PIXEL_SPACES + ("zca",)), default=None, section=IO,
                help="Pixel space of the stored images: unit [0,1], symmetric [-1,1], or normalised with a named "
                "mean/std (imagenet; glad-imagenet for GLaD's sets; cifar10, cifar100; fashion-mnist, mnist for grey "
                "sets). zca: ZCA-whitened (MTT --zca), needs --zca. Default: the layout's convention, with a warning "
                "when the values contradict it.")
@section_option("--pixel-mean", default=None, metavar="M[,M,M]", section=IO, help="Normalisation mean per channel "
                "(with --pixel-std), for a set normalised with statistics of its own.")
@section_option("--pixel-std", default=None, metavar="S[,S,S]", section=IO, help="Normalisation std per channel.")
@section_option("--zca", type=click.Path(path_type=Path), default=None, section=IO,
                help="The whitening of a ZCA set: an .npz with 'mean' [D] and 'transform' [D, D] (kornia "
                "ZCAWhitening's mean_vector and transform_matrix); the set is recovered un-whitened and whitened "
                "back.")
@section_option("--class-map", type=click.Path(path_type=Path), default=None, section=IO,
                help="JSON list of DiT class ids, one per local label.")
@section_option("--no-png", is_flag=True, section=IO, help="Skip png/ and grid.png.")
@dataclass_options(EngineSpec, only=MODEL_FIELDS + RUN_ENGINE_FIELDS)
@optgroup_runtime
@section_option("--method", type=click.Choice(sorted(METHOD_PRESETS)), default=None, section="Recovery",
                help="Distillation method: takes its preset for --ipc (see --presets); an option given on the "
                "command line (--t-init, --steps, ...) overrides the preset's value.")
@section_option("--ipc", type=click.IntRange(min=1), default=1, section="Recovery",
                help="Images per class, with --method.")
@section_option("--presets", type=click.Choice(("auto", *PRESET_TABLES)), default="auto", section="Recovery",
                help="Settings table: paper (the DIVER paper's: t_init 25, all 50 steps, guidance 0.1 in the window "
                "25:40 pulling the running latent, labels on every step; NCFM 0.02), predd (PReDD's t_init/K per "
                "--method; imagenet is its old name), fashion-mnist (the embedded prior's, chosen on a validation "
                "split). auto: paper for any --model, fashion-mnist per --method with the embedded prior.")
@dataclass_options(RecoverConfig)
@section_option("--batch-size", type=BATCH_SIZE, default="4", metavar="N|auto", section=RUN,
                help="Images per DiT batch; auto: the largest whose estimated peak fits --vram-budget/--ram-budget "
                "(the VAE sliced if that fits more).")
@section_option("--shard", default=None, metavar="K/N", section=RUN, help="Recover only shard K of N (0-based). "
                "Under torchrun or accelerate launch it is read from RANK/WORLD_SIZE; the last shard to finish "
                "writes the set.")
@section_option("-q", "--quiet", is_flag=True, section=RUN, help="No progress bar.")
@click.pass_context
def recover(ctx, **params):
    """Recover a distilled set with DIVER (semantic inheritance, guidance and fusion).

    INPUT is a distilled set: a DM .pt, an MTT/EDF or GLaD folder (images_best.pt), an NCFM .pt, an image
    folder (<class>/<image>.png) or an .npz. The recovered set is written under -o in the same layout.
    """
    from tqdm import tqdm

    from diver_lite.cli.config_file import apply_file, read_config
    from diver_lite.pipeline.run import recover as run_recover
    from diver_lite.pipeline.run_state import Shard

    from_file = read_config(params["config_file"], ctx.command, ctx) if params["config_file"] else {}
    p = apply_file(ctx, params, from_file)
    if p["resume"] and p["overwrite"]:
        raise ConfigError("--resume and --overwrite contradict each other", "pass only one of them")
    pixel_space = _pixel_space(p["pixel_space"], p["pixel_mean"], p["pixel_std"])
    backend = p["backend"] or ("onnxruntime" if p["onnx_dir"] is not None else "torch")
    on_line = given(RecoverConfig, {k: v for k, v in params.items() if k not in from_file or
                                    ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT})
    in_file = given(RecoverConfig, {k: v for k, v in from_file.items() if k not in on_line})
    batch_size = p["batch_size"]
    config = resolve_config(on_line, in_file, p["method"], p["ipc"], p["presets"], p["model"], backend,
                            p["onnx_dir"], p["onnx_graph"], batch_size=1 if batch_size == "auto" else batch_size)
    quiet, out = p["quiet"], p["out"]
    runtime_options = {k: p[k] for k in runtime_names()}

    bar = None

    def progress(p):
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=p.total, initial=p.done, unit="img", desc="recover", dynamic_ncols=True)
        bar.set_postfix_str(f"{p.plan}, {p.memory_kind} {p.memory_mb:.0f} MB", refresh=False)
        bar.n = p.done
        bar.refresh()

    def log(msg: str) -> None:          # -q silences progress, never a warning
        if not quiet or msg.startswith("Warning:"):
            click.echo(msg, err=True)
    with stop_after_batch_on_sigint(log) as should_stop:
        try:
            engine = EngineSpec(**{**given(EngineSpec, p), "backend": backend}, auto_batch=batch_size == "auto",
                                **runtime_from_options(runtime_options, backend))
            options = RunOptions(**given(RunOptions, p), pixel_space=pixel_space, zca=p["zca"],
                                 class_map=_class_map(p["class_map"]), write_pngs=not p["no_png"],
                                 shard=_shard(p["shard"]) if p["shard"] else Shard.from_env())
            report = run_recover(p["input_path"], out, config, engine, options, progress=progress, log=log,
                                 should_stop=should_stop)
        finally:
            if bar is not None:
                bar.close()
    _write_run_toml(ctx, p, config, backend)
    t = report["timings_s"]
    per = f", {t['per_image']:.2f} s/image" if "per_image" in t else ""
    if not report["merged"]:
        k, n = report["shard"]
        click.echo(f"Shard {k}/{n}: {report['images_this_run']} images recovered{per}; "
                   f"{report['images_missing']} of the set still to do by other shards, and the last one writes "
                   f"the set. Rerun the same command if a shard failed.")
        return
    change = report["output"]["change"]
    moved = f", {change['psnr_db_mean']} dB from their inputs on average" if change else ""
    click.echo(f"Recovered {report['input']['images']} images ({report['images_this_run']} this run{per}) in "
               f"{t['total']:.1f} s{moved} -> {report['output']['set']}; report: {Path(out) / 'report.md'}")


def _write_run_toml(ctx, p: dict, config, backend: str) -> None:
    """OUT/run.toml: the recovery settings that ran (every field, the preset resolved) and the other options."""
    from dataclasses import fields

    from diver_lite.cli.config_file import write_run_toml

    recovery = {f.name: getattr(config, f.name) for f in fields(config) if "cli" in f.metadata}
    recovery["guidance_window"] = list(config.window)
    used = {**p, "backend": backend, "method": None, "presets": None, "ipc": None}   # the settings are resolved
    write_run_toml(Path(p["out"]) / "run.toml", ctx.command, used, recovery,
                   "diver-lite recover settings of this run. Repeat it with\n  diver-lite recover SET -o OUT "
                   "--config run.toml\n(the command line wins over this file).")


def _pixel_space(named: str | None, mean: str | None, std: str | None) -> str | None:
    """--pixel-space, or a custom space from --pixel-mean/--pixel-std (both or neither)."""
    from diver_lite.core.prepare import custom_space

    if mean is None and std is None:
        return named
    if named is not None and named != "zca":
        raise ConfigError("--pixel-space and --pixel-mean/--pixel-std were both given", "give one of them")
    if mean is None or std is None:
        raise ConfigError("--pixel-mean and --pixel-std go together", "give both, e.g. --pixel-mean 0.2861 "
                          "--pixel-std 0.3530")
    try:
        return custom_space(tuple(float(v) for v in mean.split(",")), tuple(float(v) for v in std.split(",")))
    except ValueError as e:
        raise ConfigError(f"--pixel-mean {mean} / --pixel-std {std}: {e}", "e.g. --pixel-mean 0.5,0.5,0.5 "
                          "--pixel-std 0.25,0.25,0.25")


def _shard(text: str):
    from diver_lite.pipeline.run_state import Shard

    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r} is not K/N", "e.g. --shard 0/4")
    return Shard(k, n)


@contextlib.contextmanager
def stop_after_batch_on_sigint(log):
    """The first Ctrl-C asks the run to stop once the batch in progress is saved; a second one stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    asked = []

    def handler(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        log("\nStopping after the current batch (Ctrl-C again to stop now) ...")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)

