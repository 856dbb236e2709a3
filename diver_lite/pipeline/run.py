"""recover(): read a distilled set, run DIVER on it batch by batch, write the recovered set, its PNGs and its
report. Resumable: each finished image is kept under OUT/.diver-lite/ and a restarted run redoes at most the
batch that was cut off; batches are fixed index blocks, so a resumed run computes what an uninterrupted one would."""

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from diver_lite.core.classmap import resolve_class_map
from diver_lite.backends.no_model import NoModelBackend
from diver_lite.core.config import RecoverConfig
from diver_lite.core.controls import NO_MODEL
from diver_lite.core.recovery import StageTimes
from diver_lite.core.schedule import build_schedule
from diver_lite.errors import ConfigError
from diver_lite.layouts import LAYOUTS, get_layout, read_set
from diver_lite.layouts.files import atomic_write
from diver_lite.pipeline.batches import recover_batches
from diver_lite.pipeline.engine import EngineSpec, build_engine, memory_now, numerics, plan_label
from diver_lite.options import option
from diver_lite.output_policy import check_output
from diver_lite.pipeline.identity import model_fingerprint, take_lock
from diver_lite.pipeline.outputs import write_outputs
from diver_lite.pipeline.report import peak_rss_mb, render_markdown, versions
from diver_lite.pipeline.run_state import (Shard, cached_image, fingerprint, intact, prepare_output,
                                           take_merge_lock)


# What a run writes beside the recovered set (pipeline/outputs.py, this file, run_state.py).
OWN_NAMES = ("report.json", "report.md", "grid.png", "png", "run.toml", ".diver-lite")


@dataclass(frozen=True)
class RunOptions:
    """How the set is read and the run is kept: `layout`/`pixel_space` (None: detected), `experiment` and `zca`
    (see layouts.read_set), the DiT classes (`subset` or `class_map`), the output policy, and `shard`: this
    process's share of a multi-process run (the shards resume one another's folder; the last one writes)."""

    layout: str | None = option(None, "Input layout.", choices=LAYOUTS, section="Input and output",
                                shown_default="detected")
    pixel_space: str | None = None
    experiment: int | None = option(None, "DM files hold one [X, y] per experiment: recover only entry K.",
                                    minimum=0, section="Input and output", shown_default="every one")
    zca: str | os.PathLike | None = None
    subset: str | None = option(None, "Built-in ImageNet class map (imagenette, imagewoof, imagemeow, imagesquawk, "
                                "imagefruit, imageyellow) or 'identity'.", section="Input and output")
    class_map: tuple[int, ...] | None = None
    resume: bool = option(False, "Continue an interrupted run in the same -o folder.", section="Run", kind="flag")
    overwrite: bool = option(False, "Replace a previous run in the -o folder.", section="Run", kind="flag")
    write_pngs: bool = True
    max_png: int | None = option(1000, "Write PNGs for at most this many images (the grid shows at most 50).",
                                 minimum=0, section="Input and output")      # None: every image
    shard: Shard = Shard()

    def __post_init__(self):
        """The same one-line errors from Python as from the command line, before anything is read."""
        from diver_lite.layouts import LAYOUTS

        def need(ok: bool, what: str, fix: str):
            if not ok:
                raise ConfigError(what, fix)

        need(self.layout is None or self.layout in LAYOUTS, f"layout={self.layout!r}",
             f"use one of {', '.join(LAYOUTS)}, or None to detect it")
        need(self.pixel_space is None or isinstance(self.pixel_space, str), f"pixel_space={self.pixel_space!r}",
             "give a pixel space's name (unit, imagenet, ...) or None")
        for name in ("experiment", "max_png"):
            value = getattr(self, name)
            need(value is None or isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                 f"{name}={value!r} is not a count", "use 0, 1, 2, ... or None")
        need(self.class_map is None or all(isinstance(c, int) and not isinstance(c, bool) for c in self.class_map),
             f"class_map={self.class_map!r} is not a list of DiT class ids", "give one integer id per label")
        need(isinstance(self.shard, Shard), f"shard={self.shard!r}", "use Shard(index, count)")
        need(not (self.resume and self.overwrite), "resume and overwrite contradict each other", "pass only one")


@dataclass
class Progress:
    done: int
    total: int
    images_this_run: int
    memory_mb: float = 0.0          # now: GPU memory allocated on CUDA, else the process's resident memory
    memory_kind: str = "RSS"
    plan: str = ""                  # the runtime plan's label (torch) or the ONNX graph and precision


class Interrupted(Exception):
    """Raised after the batch in progress was saved, when `should_stop()` said so."""


def split_options(fields_given: dict) -> tuple[EngineSpec, RunOptions]:
    """recover()'s keyword arguments, each to the EngineSpec or RunOptions field of its name."""
    engine_names = {f.name for f in fields(EngineSpec)}
    run_names = {f.name for f in fields(RunOptions)}
    unknown = sorted(set(fields_given) - engine_names - run_names)
    if unknown:
        raise TypeError(f"recover() got unknown options {unknown}")
    return (EngineSpec(**{k: v for k, v in fields_given.items() if k in engine_names}),
            RunOptions(**{k: v for k, v in fields_given.items() if k in run_names}))


def recover(input_path: str | os.PathLike, out: str | os.PathLike, config: RecoverConfig | None = None,
            engine: EngineSpec | None = None, options: RunOptions | None = None, *,
            progress: Callable[[Progress], None] | None = None, log: Callable[[str], None] | None = None,
            should_stop: Callable[[], bool] | None = None, **fields_given) -> dict:
    """Recover the distilled set at `input_path` into folder `out`; returns the report (also written there).
    `engine`, `options`: what runs and how the run is kept; in a notebook their fields can be given as keywords
    instead (recover(path, out, config, model="facebook/DiT-XL-2-256", device="cuda", resume=True)).
    `should_stop()`: checked after each saved batch; True raises Interrupted."""
    if fields_given:
        if engine is not None or options is not None:
            raise TypeError("give either engine/options or their fields as keywords, not both")
        engine, options = split_options(fields_given)
    config, engine, o = config or RecoverConfig(), engine or EngineSpec(), options or RunOptions()
    for value, kind, name in ((config, RecoverConfig, "config"), (engine, EngineSpec, "engine"),
                              (o, RunOptions, "options")):
        if not isinstance(value, kind):
            raise ConfigError(f"{name} is a {type(value).__name__}, not a {kind.__name__}",
                              f"pass {kind.__name__}(...) (or its fields as keywords)")
    log = log or (lambda msg: None)
    if o.shard.count > 1 and o.overwrite:
        raise ConfigError("--overwrite cannot be combined with several processes", "empty the -o folder first")
    started = time.perf_counter()
    dset = read_set(input_path, o.layout, o.pixel_space, o.experiment, o.zca)
    timings = {"read": time.perf_counter() - started}
    for warning in dset.warnings:
        log(f"Warning: {warning}")
    out, resume = Path(out), o.resume or o.shard.count > 1
    inputs = (input_path, *_model_paths(engine))            # never written into, the model's folders included
    check_output(out, inputs, o.overwrite, resume, resumable=True)   # fail before loading a large model
    name = dset.extra.get("file") or dset.source.name                    # what the recovered set is written as
    if name in OWN_NAMES:
        raise ConfigError(f"the recovered set would be written as {out / name}, a name the run's own "
                          f"{'previews' if name == 'png' else 'report or state'} take",
                          "rename the input (or copy it under another name) and recover that")
    start = time.perf_counter()
    if config.control in NO_MODEL:      # a projection: no model to load
        backend = NoModelBackend(max(1000, dset.num_labels), config.batch_size)
    else:
        backend = build_engine(_shard_engine(engine, o.shard), config.cfg_channels, config.batch_size, log,
                               max_batch=len(dset))
    if engine.auto_batch:   # the batch size leaves the result as it is (to float rounding), so resume still matches
        config = config.replace(batch_size=backend.batch_size)
    backend.check_config(config)
    for warning in backend.warnings:
        log(f"Warning: {warning}")
    timings["load"] = time.perf_counter() - start
    dit_ids = np.array(resolve_class_map(o.subset, o.class_map, dset.num_labels, backend.num_classes,
                                         np.unique(dset.hard_labels)), dtype=np.int64)
    run = json.loads(json.dumps({   # tuples -> lists, as read back from run.json
        "input": fingerprint(dset), "layout": dset.layout, "pixel_space": dset.pixel_space,
        "experiment": o.experiment, "model": backend.source, "model_fingerprint": _model_fingerprint(engine, config),
        "precision": numerics(backend),
        "timestep_embedding": backend.describe().get("timestep_embedding"), "class_map": dit_ids.tolist(),
        "config": config.result_fields()}))
    state = prepare_output(out, run, resume, o.overwrite, wait_s=30.0 if o.shard.count > 1 else 0.0,
                           inputs=inputs)
    lock = take_lock(state, sharded=o.shard.count > 1)
    try:
        return _recover_into(_Run(input_path, out, state, dset, backend, config, o, dit_ids, timings, started),
                             progress, log, should_stop)
    finally:
        lock.unlink(missing_ok=True)


def _model_paths(engine: EngineSpec) -> list:
    """The folders and files the model comes from (the embedded prior's too): an output may not go inside them."""
    from diver_lite.models.source import EMBEDDED_DEFAULT

    paths = [p for p in (engine.model, engine.vae, engine.onnx_dir) if isinstance(p, (str, os.PathLike))]
    return paths + ([EMBEDDED_DEFAULT] if engine.model is None and engine.backend == "torch" else [])


def _model_fingerprint(engine: EngineSpec, config: RecoverConfig) -> str | None:
    from diver_lite.core.controls import NO_MODEL

    if config.control in NO_MODEL:
        return None
    if engine.backend == "onnxruntime":
        return model_fingerprint(None, onnx_dir=engine.onnx_dir)
    return model_fingerprint(engine.model, engine.vae)


@dataclass
class _Run:
    """What the run proper works on, once the folder is prepared and locked."""
    input_path: object
    out: Path
    state: Path
    dset: object
    backend: object
    config: RecoverConfig
    options: RunOptions
    dit_ids: np.ndarray
    timings: dict
    started: float


def _recover_into(r: _Run, progress, log, should_stop) -> dict:
    """The run proper: the batches not cached yet, then (once every image is) the set, previews and report."""
    out, state, dset, backend, config, o = r.out, r.state, r.dset, r.backend, r.config, r.options
    timings, dit_ids = r.timings, r.dit_ids
    where = f" (shard {o.shard.index}/{o.shard.count})" if o.shard.count > 1 else ""
    log(f"{len(dset)} {dset.layout} images {tuple(dset.images.shape[1:])} -> {out} on "
        f"{backend.device_name()}{where}; {config.summary()}")
    done_before, recovered_now, times = _run_batches(backend, dset, dit_ids[dset.hard_labels], config, state,
                                                     o.shard, progress, should_stop)
    timings.update(times)
    if recovered_now:
        timings["per_image"] = sum(times.values()) / recovered_now
    report = {
        "input": {"path": str(r.input_path), "layout": dset.layout, "images": len(dset),
                  "shape": list(dset.images.shape[1:]), "pixel_space": dset.pixel_space,
                  "soft_labels": dset.labels.ndim == 2, "warnings": dset.warnings,
                  "experiments": len(dset.extra.get("experiment_sizes", [])) or None,
                  "zca": "zca" in dset.extra},
        "config": config.to_dict(), "class_map": dit_ids.tolist(), "model": backend.describe(),
        "backend": backend.name, "device": backend.device_name(), "provider": backend.provider(),
        "backend_warnings": list(backend.warnings),
        "shard": [o.shard.index, o.shard.count], "images_this_run": recovered_now,
        "images_before_resume": done_before,
    }
    missing = [i for i in range(len(dset)) if not intact(cached_image(state, i))]
    peak = lambda: {"cpu_peak_rss_mb": peak_rss_mb(), **backend.peak_memory()}  # noqa: E731
    if missing or (o.shard.count > 1 and not take_merge_lock(state)):
        report.update(merged=False, images_missing=len(missing), timings_s=_rounded(timings), peak_memory=peak(),
                      versions=versions())
        return report
    start = time.perf_counter()
    report["output"] = write_outputs(dset, state, out, o.write_pngs, o.max_png)
    timings["write"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - r.started
    report.update(merged=True, timings_s=_rounded(timings), peak_memory=peak(), versions=versions())
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(render_markdown(report)))
    (state / "merge.lock").unlink(missing_ok=True)
    return report


def _rounded(timings: dict) -> dict:
    return {k: round(v, 4) for k, v in timings.items()}


def _shard_engine(engine: EngineSpec, shard: Shard) -> EngineSpec:
    """With several torch processes on CUDA, `auto` gives each its own GPU (LOCAL_RANK, as torchrun sets it)."""
    if engine.backend == "torch" and engine.device == "auto" and shard.count > 1 and "LOCAL_RANK" in os.environ:
        import torch

        return replace(engine, device=f"cuda:{os.environ['LOCAL_RANK']}" if torch.cuda.is_available() else "cpu")
    return engine


def _run_batches(engine, dset, dit_labels: np.ndarray, config: RecoverConfig, state: Path, shard: Shard,
                 progress, should_stop) -> tuple[int, int, dict]:
    """Recover this shard's batches that are not cached yet; each finished image is saved at once."""
    from safetensors.numpy import save_file

    batches = shard.batches(len(dset), config.batch_size)
    if shard.count == 1:   # temporary files of a write that was killed (SIGKILL, power loss); never results
        for stale in (state / "images").glob(".*"):
            stale.unlink(missing_ok=True)
    mine = [i for b in batches for i in b]
    done = {i for i in mine if intact(cached_image(state, i))}   # a damaged cached image is computed again
    done_before, recovered_now, times = len(done), 0, StageTimes()
    report = lambda: progress and progress(Progress(len(done), len(mine), recovered_now, *memory_now(engine),  # noqa
                                                    plan_label(engine)))
    report()
    todo = [idx for idx in batches if not done.issuperset(idx)]
    schedule = build_schedule(config, engine.schedule)
    for idx, y in recover_batches(engine, dset.images, dit_labels, todo, config, schedule, dset.pixel_space,
                                  mosaic=get_layout(dset.layout).mosaic, times=times):
        for i, img in zip(idx, y):
            atomic_write(cached_image(state, i),
                         lambda tmp, img=img: save_file({"image": np.ascontiguousarray(img)}, tmp))
        recovered_now += len(idx)
        done.update(idx)
        report()
        if should_stop and should_stop() and not done.issuperset(mine):
            raise Interrupted(f"stopped after {len(done)} of {len(mine)} images")
    return done_before, recovered_now, times.seconds
