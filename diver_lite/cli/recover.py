"""`diver-lite recover`: distilled set in, recovered set out."""

import contextlib
import signal
import threading
from pathlib import Path

import click

from diver_lite.core.config import LABEL_PHASES, METHOD_PRESETS, PIXEL_RANGES, PRESET_TABLES, SAMPLERS
from diver_lite.core.controls import CONTROLS
from diver_lite.core.guidance import GUIDANCE_TARGETS
from diver_lite.layouts import LAYOUTS
from diver_lite.core.prepare import PIXEL_SPACES
from diver_lite.errors import ConfigError, InputError
from diver_lite.cli.recover_settings import resolve_config
from diver_lite.cli.runtime_options import BATCH_SIZE, RUNTIME_HELP, optgroup_runtime, runtime_from_options

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


def _window(ctx, param, value):
    if value is None:
        return None
    try:
        low, high = (int(v) for v in value.split(":"))
    except ValueError:
        raise click.BadParameter("give LOW:HIGH, e.g. 0:6")
    return low, high


def _class_map(path: Path | None):
    if path is None:
        return None
    from diver_lite.core.classmap import parse_class_map_json

    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"cannot read class map {path}: {e.strerror}", "check the path")
    return parse_class_map_json(text, str(path))


@click.command(epilog=EXAMPLE + RUNTIME_HELP, context_settings={"show_default": True})
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Output folder: the recovered set in the input's layout, png/, grid.png, report.json/.md.")
@click.option("--layout", type=click.Choice(LAYOUTS), default=None, help="Input layout; detected when omitted.")
@click.option("--pixel-space", type=click.Choice(PIXEL_SPACES + ("zca",)), default=None,
              help="Pixel space of the stored images: unit [0,1], symmetric [-1,1], or normalised with a named "
              "mean/std (imagenet; glad-imagenet for GLaD's sets; cifar10, cifar100; fashion-mnist, mnist for grey "
              "sets). zca: ZCA-whitened (MTT --zca), needs --zca. Default: the layout's convention, with a warning "
              "when the values contradict it.")
@click.option("--pixel-mean", default=None, metavar="M[,M,M]", help="Normalisation mean per channel (with "
              "--pixel-std), for a set normalised with statistics of its own.")
@click.option("--pixel-std", default=None, metavar="S[,S,S]", help="Normalisation std per channel.")
@click.option("--zca", type=click.Path(path_type=Path), default=None,
              help="The whitening of a ZCA set: an .npz with 'mean' [D] and 'transform' [D, D] (kornia "
              "ZCAWhitening's mean_vector and transform_matrix); the set is recovered un-whitened and whitened back.")
@click.option("--experiment", type=click.IntRange(min=0), default=None,
              help="DM files hold one [X, y] per experiment: recover only entry K (default: every one).")
@click.option("--subset", default=None, help="Built-in ImageNet class map (imagenette, imagewoof, imagemeow, "
              "imagesquawk, imagefruit, imageyellow) or 'identity'.")
@click.option("--class-map", type=click.Path(path_type=Path), default=None,
              help="JSON list of DiT class ids, one per local label.")
@click.option("--model", default=None, help="Diffusers DiT folder, original DiT .pt, repo id in the local HF "
              "cache, or tiny-random (random weights).  [default: the embedded Fashion-MNIST prior]")
@click.option("--vae", default=None, help="AutoencoderKL folder or cached repo id (needed with an original .pt).")
@click.option("--timestep-embedding", type=click.Choice(["dit", "diffusers"]), default=None,
              help="Timestep frequencies the DiT's weights were trained with: dit (Meta's DiT-XL/2: /128) or "
              "diffusers (/127). Default: what the model folder records; none recorded means Meta's (dit).")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), default=None,
              help="torch, or ONNX Runtime over graphs from `diver-lite export` (with --onnx).  [default: "
              "onnxruntime when --onnx is given, else torch]")
@optgroup_runtime
@click.option("--onnx", "onnx_dir", type=click.Path(path_type=Path), default=None,
              help="Folder written by `diver-lite export`, for --backend onnxruntime.")
@click.option("--provider", default=None, metavar="NAME[,NAME]",
              help="ONNX Runtime execution providers in order of preference (cpu, cuda, tensorrt, directml, coreml, "
              "openvino, or full names); each must be installed. Default: from --device.")
@click.option("--onnx-graph", type=click.Choice(["dit", "guided_step"]), default="dit",
              help="With --backend onnxruntime: dit (the sampler calls the DiT) or guided_step (one exported DIVER "
              "DDIM step per call: the deployed guided denoiser; DDIM only).")
@click.option("--ort-sessions", type=click.Choice(["lean", "resident"]), default="lean",
              help="With --backend onnxruntime: lean holds one graph at a time (encoder, DiT, decoder: the peak is the "
              "largest graph's, the DiT loads once per batch); resident holds all three.")
@click.option("--method", type=click.Choice(sorted(METHOD_PRESETS)), default=None,
              help="Distillation method: takes its preset for --ipc (see --presets); an option given on the command "
              "line (--t-init, --steps, ...) overrides the preset's value.")
@click.option("--ipc", type=click.IntRange(min=1), default=1, help="Images per class, with --method.")
@click.option("--presets", type=click.Choice(("auto", *PRESET_TABLES)), default="auto",
              help="Settings table: paper (the DIVER paper's: t_init 25, all 50 steps, guidance 0.1 in the window "
              "25:40 pulling the running latent, labels on every step; NCFM 0.02), predd (PReDD's t_init/K per "
              "--method; imagenet is its old name), fashion-mnist (the embedded prior's, chosen on a validation "
              "split). auto: paper for any --model, fashion-mnist per --method with the embedded prior.")
@click.option("--t-init", type=click.IntRange(min=0), default=None, help="Sampling index the inherited latent is "
              "noised to (of --sampling-steps).  [default: 10]")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="K, reverse steps run at indices "
              "K-1..0.  [default: 15]")
@click.option("--align/--no-align", default=False, help="Start the reverse process at t_init (K = t_init + 1).")
@click.option("--sampling-steps", type=click.IntRange(min=2), default=50, help="Respaced schedule length S.")
@click.option("--cfg-scale", type=click.FloatRange(min=0), default=4.0, help="Classifier-free guidance scale s.")
@click.option("--cfg-channels", type=click.Choice(["3", "4"]), default="3",
              help="Latent channels CFG acts on: 3 as the original DiT, 4 as diffusers.")
@click.option("--guidance-scale", type=click.FloatRange(min=0), default=0.5,
              help="Semantic guidance lambda; 0 turns it off (PReDD).")
@click.option("--guidance-window", callback=_window, default=None, metavar="LOW:HIGH",
              help="Step indices where guidance acts.  [default: 0:floor(K/2)-1]")
@click.option("--no-sigma-scaling", is_flag=True, help="Do not scale the guidance by the learned sigma.")
@click.option("--guidance-target", type=click.Choice(GUIDANCE_TARGETS), default=None,
              help="What the guidance pulls toward the inherited latent: x0, the predicted clean latent (PReDD's "
              "code), or xt, the running latent (the DIVER paper's equation).  [default: the table's: xt with "
              "--presets paper, x0 otherwise; with --onnx-graph guided_step, the graph's]")
@click.option("--control", type=click.Choice(CONTROLS), default="none",
              help="Run a control instead of DIVER, written like a recovery: round-trip (the VAE alone: encode, "
              "decode), raw-dit (class-conditional DiT samples from noise over the whole schedule, no inheritance), "
              "projection (no model: clip to the pixel range), projection-grey (also each pixel's channel mean).")
@click.option("--label-phase", type=click.Choice(LABEL_PHASES), default="concrete",
              help="concrete: labels, CFG and guidance only in the late phase; all: every step (PReDD).")
@click.option("--sampler", type=click.Choice(SAMPLERS), default="ddim", help="ddim (eta=0) or ddpm (PReDD).")
@click.option("--pixel-range", type=click.Choice(PIXEL_RANGES), default="auto",
              help="auto: map the input's pixel space to the VAE's [-1,1]; raw: feed stored values (PReDD).")
@click.option("--keep-size", is_flag=True, help="Write the model-size (e.g. 256²) result, not the input size.")
@click.option("--batch-size", type=BATCH_SIZE, default="4", metavar="N|auto", help="Images per DiT batch; auto: "
              "the largest whose estimated peak fits --vram-budget/--ram-budget (the VAE sliced if that fits more).")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Run seed; each image has its own stream.")
@click.option("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (Apple silicon: fp16/bf16).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in the same -o folder.")
@click.option("--overwrite", is_flag=True, help="Replace a previous run in the -o folder.")
@click.option("--no-png", is_flag=True, help="Skip png/ and grid.png.")
@click.option("--max-png", type=click.IntRange(min=0), default=1000,
              help="Write PNGs for at most this many images (the grid shows at most 50).")
@click.option("--shard", default=None, metavar="K/N", help="Recover only shard K of N (0-based). Under torchrun "
              "or accelerate launch it is read from RANK/WORLD_SIZE; the last shard to finish writes the set.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def recover(input_path, out, layout, pixel_space, pixel_mean, pixel_std, zca, experiment, subset, class_map, model,
            vae, timestep_embedding, backend, onnx_dir, provider, onnx_graph, ort_sessions,
            method, ipc, presets,
            t_init, steps, align,
            sampling_steps, cfg_scale, cfg_channels, guidance_scale, guidance_window, no_sigma_scaling,
            guidance_target, control, label_phase, sampler, pixel_range, keep_size, batch_size, seed, device, resume,
            overwrite, no_png, max_png, shard, quiet, **runtime_options):
    """Recover a distilled set with DIVER (semantic inheritance, guidance and fusion).

    INPUT is a distilled set: a DM .pt, an MTT/EDF or GLaD folder (images_best.pt), an NCFM .pt, an image
    folder (<class>/<image>.png) or an .npz. The recovered set is written under -o in the same layout.
    """
    from tqdm import tqdm

    from diver_lite.pipeline.engine import EngineSpec
    from diver_lite.pipeline.run import RunOptions
    from diver_lite.pipeline.run import recover as run_recover
    from diver_lite.pipeline.run_state import Shard
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other", "pass only one of them")
    pixel_space = _pixel_space(pixel_space, pixel_mean, pixel_std)
    backend = backend or ("onnxruntime" if onnx_dir is not None else "torch")
    options = dict(align=align, num_sampling_steps=sampling_steps, cfg_scale=cfg_scale,
                   cfg_channels=int(cfg_channels), guidance_scale=guidance_scale, guidance_window=guidance_window,
                   sigma_scaling=not no_sigma_scaling, control=control,
                   label_phase=label_phase, sampler=sampler,
                   pixel_range=pixel_range, keep_size=keep_size, seed=seed,
                   batch_size=1 if batch_size == "auto" else batch_size)
    if guidance_target is not None:
        options["guidance_target"] = guidance_target
    if t_init is not None:
        options["t_init"] = t_init
    if steps is not None:
        options["steps"] = steps
    config = resolve_config(options, method, ipc, presets, model, backend, onnx_dir, onnx_graph)

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
            engine = EngineSpec(backend=backend, model=model, vae=vae, device=device, onnx_dir=onnx_dir,
                                onnx_graph=onnx_graph, provider=provider, timestep_embedding=timestep_embedding,
                                ort_sessions=ort_sessions,
                                auto_batch=batch_size == "auto", **runtime_from_options(runtime_options, backend))
            options = RunOptions(layout=layout, pixel_space=pixel_space, experiment=experiment, zca=zca,
                                 subset=subset, class_map=_class_map(class_map), resume=resume, overwrite=overwrite,
                                 write_pngs=not no_png, max_png=max_png,
                                 shard=_shard(shard) if shard else Shard.from_env())
            report = run_recover(input_path, out, config, engine, options, progress=progress, log=log,
                                 should_stop=should_stop)
        finally:
            if bar is not None:
                bar.close()
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

