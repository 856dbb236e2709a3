"""recover(): the one place that reads a distilled set, runs DIVER on it, and writes the recovered set, its PNGs
and its report. Resumable: each finished image is kept under OUT/.diver-lite/ and a restarted run redoes at most
the batch that was cut off; batches are fixed index blocks, so a resumed run computes exactly what an
uninterrupted one would. torch is imported only by the torch backend and the .pt layouts."""

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .classmap import resolve_class_map
from .config import RecoverConfig
from .data import DistilledSet, atomic_write, read_set, save_png, write_set
from .errors import ConfigError, OutputError
from .output_policy import MARK, check_output
from .report import before_after_grid, peak_rss_mb, render_markdown, versions
from .schedule import build_plan

STATE_DIR = MARK
BACKENDS = ("torch", "onnxruntime")


@dataclass
class Progress:
    done: int
    total: int
    images_this_run: int
    memory_mb: float = 0.0          # now: GPU memory allocated on CUDA, else the process's resident memory
    memory_kind: str = "RSS"
    plan: str = ""                  # the runtime plan's label (torch) or the ONNX graph and precision


def resolve_device(device: str):
    import torch

    if device == "auto":   # MPS (Apple silicon) only when asked for: --device mps
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}", "use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA device",
                          "use --device cpu, or install a CUDA build of torch")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps needs Apple silicon and a torch build with MPS", "use --device cpu")
    return dev


def load_backend(backend: str, model=None, vae=None, onnx_dir=None, device: str = "auto", cfg_channels: int = 3,
                 precision: str = "fp32", plan=None, budget_gb: float | None = None, batch_size: int = 1,
                 log: Callable[[str], None] | None = None, budget_for: str | None = None,
                 timestep_embedding: str | None = None, onnx_graph: str = "dit", provider: str | None = None):
    """The torch backend over `model` (see models.load_models) under a runtime plan (runtime_plan.RuntimePlan;
    `precision` alone is the plan with nothing else changed), or ONNX Runtime over an exported folder (whose
    precision was fixed at export). `budget_gb`: the device's memory budget (RAM on the CPU): the fastest plan
    whose estimate fits is chosen instead of `plan`, and logged. `timestep_embedding`: "dit"/"diffusers" overrides
    the convention the model records (timestep_embedding.py); an ONNX graph has it built in."""
    if backend == "onnxruntime":
        if onnx_dir is None:
            raise ConfigError("--backend onnxruntime needs the exported graphs", "pass --onnx DIR (diver-lite export)")
        from .export.ort import OrtBackend

        if timestep_embedding is not None:
            raise ConfigError("--timestep-embedding applies to the torch backend",
                              "an ONNX graph computes the convention it was exported with (diver-lite export "
                              "--timestep-embedding)")

        return OrtBackend(onnx_dir, device=device, cfg_channels=cfg_channels, graph=onnx_graph, provider=provider)
    if backend != "torch":
        raise ConfigError(f"unknown backend {backend!r}", f"use one of {', '.join(BACKENDS)}")
    if provider is not None:
        raise ConfigError("--provider chooses ONNX Runtime's execution providers", "use it with --backend onnxruntime")
    from .backend import TorchBackend
    from .runtime import build_runtime, plan_for_budget
    from .runtime_plan import RuntimePlan

    dev = resolve_device(device)
    plan = plan or RuntimePlan(precision)
    if budget_gb is not None:
        if budget_for is not None and budget_for != dev.type:
            flag = {"cuda": "--vram-budget", "cpu": "--ram-budget"}
            raise ConfigError(f"{flag[budget_for]} was given but the run is on {dev.type}",
                              f"use {flag[dev.type]}, or --device {budget_for}")
        plan, estimate = plan_for_budget(model, vae, dev, budget_gb, batch_size)
        if log:
            log(f"memory plan for {budget_gb:g} GB: {plan.label} (estimated peak {estimate['total'] / 2**30:.2f} GB)")
    runtime = build_runtime(model, vae, dev, plan, timestep_embedding)
    return TorchBackend(runtime.models, cfg_channels, runtime.placement, dev, runtime)


def fingerprint(dset: DistilledSet) -> str:
    h = hashlib.sha256()
    for a in (dset.images, dset.labels):
        h.update(str((a.shape, str(a.dtype))).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def prepare_output(out: Path, run: dict, resume: bool, overwrite: bool, wait_s: float = 0.0,
                   inputs: tuple = ()) -> Path:
    """Check the output folder before any work (output_policy: never over an input, --overwrite only over an
    earlier diver-lite run); returns the state folder. Resuming needs the same run.
    `wait_s`: how long to wait for another process of the same run to write run.json (sharded runs)."""
    state = out / STATE_DIR
    busy = check_output(out, inputs, overwrite, resume, resumable=True) == "earlier"
    if busy and resume:
        run_file = state / "run.json"
        deadline = time.monotonic() + wait_s
        while state.is_dir() and not run_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not run_file.is_file():
            raise OutputError(f"{out} holds no diver-lite run to resume", "drop --resume or pick another -o")
        try:
            previous = json.loads(run_file.read_text())
        except (ValueError, OSError) as e:
            raise OutputError(f"{run_file} is damaged ({type(e).__name__}), so the run cannot be resumed",
                              "pass --overwrite to start the run again (finished images are then redone)")
        if not isinstance(previous, dict):
            raise OutputError(f"{run_file} is damaged (not a run record)", "pass --overwrite to start again")
        if previous != run:
            diff = sorted(k for k in set(run) | set(previous) if run.get(k) != previous.get(k))
            raise OutputError(f"{out} holds a run with different {', '.join(diff)}",
                              "resume with the same input, model and options, or pick another -o")
    elif busy and overwrite:
        shutil.rmtree(state, ignore_errors=True)
    try:
        (state / "images").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write to {out}: {e.strerror}", "pick a writable -o folder")
    atomic_write(state / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(run, indent=1)))
    return state


def _cached(state: Path, index: int) -> Path:
    return state / "images" / f"{index:08d}.safetensors"


@dataclass(frozen=True)
class Shard:
    """Process `index` of `count` takes every count-th batch. Batches are fixed index blocks, so each image is
    computed exactly as in a single process, and the shards' outputs merge bit for bit."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count} does not exist", "give K/N with 0 <= K < N")

    @classmethod
    def from_env(cls) -> "Shard":
        """torchrun and accelerate launch set RANK and WORLD_SIZE for each process."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))

    def batches(self, n: int, batch_size: int) -> list[list[int]]:
        blocks = [list(range(lo, min(lo + batch_size, n))) for lo in range(0, n, batch_size)]
        return blocks[self.index::self.count]


class Interrupted(Exception):
    """Raised after the batch in progress was saved, when `should_stop()` said so."""


def _take_merge_lock(state: Path) -> bool:
    """One process of a sharded run writes the set: the first to create the lock, or any when its holder died."""
    lock = state / "merge.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return True
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False  # its holder is alive and merging
            except (ProcessLookupError, ValueError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale: the holder died
    return False


def recover(input_path: str | os.PathLike, out: str | os.PathLike, config: RecoverConfig,
            model=None, vae: str | os.PathLike | None = None, backend: str = "torch",
            onnx_dir: str | os.PathLike | None = None, layout: str | None = None, pixel_space: str | None = None,
            subset: str | None = None, class_map: tuple[int, ...] | None = None, device: str = "auto",
            resume: bool = False, overwrite: bool = False, write_pngs: bool = True, max_png: int | None = None,
            precision: str = "fp32", plan=None, budget_gb: float | None = None, budget_for: str | None = None,
            shard: Shard | None = None, progress: Callable[[Progress], None] | None = None,
            log: Callable[[str], None] | None = None, should_stop: Callable[[], bool] | None = None,
            timestep_embedding: str | None = None, experiment: int | None = None,
            zca: str | os.PathLike | None = None, onnx_graph: str = "dit", provider: str | None = None) -> dict:
    """Recover the distilled set at `input_path` into folder `out`; returns the report (also written there).
    `model`: what models.load_models takes, or loaded DiverModels; `backend` "onnxruntime" runs `onnx_dir`.
    `plan`: a runtime_plan.RuntimePlan for the torch backend (else `precision` alone); `budget_gb`: choose the
    fastest plan that fits this much device memory (RAM on the CPU) instead.
    `shard`: this process's share of a multi-process run (the shards resume one another's folder; the last one
    to finish writes the set). `should_stop()`: checked after each saved batch; True raises Interrupted.
    `experiment`, `zca`: see data.read_set."""
    log = log or (lambda msg: None)
    shard = shard or Shard()
    if shard.count > 1 and overwrite:
        raise ConfigError("--overwrite cannot be combined with several processes", "empty the -o folder first")
    started = time.perf_counter()
    timings = {}
    dset = read_set(input_path, layout, pixel_space, experiment, zca)
    timings["read"] = time.perf_counter() - started
    for warning in dset.warnings:
        log(f"Warning: {warning}")

    out = Path(out)
    resume = resume or shard.count > 1
    check_output(out, (input_path,), overwrite, resume, resumable=True)   # fail before loading a large model
    start = time.perf_counter()
    engine = load_backend(backend, model, vae, onnx_dir, _shard_device(device, shard, backend), config.cfg_channels,
                          precision, plan, budget_gb, config.batch_size, log, budget_for, timestep_embedding,
                          onnx_graph, provider)
    getattr(engine, "check_config", lambda c: None)(config)
    timings["load"] = time.perf_counter() - start
    dit_ids = np.array(resolve_class_map(subset, class_map, dset.num_labels, engine.num_classes,
                                         np.unique(dset.hard_labels)), dtype=np.int64)
    plan = build_plan(config, engine.schedule)

    run = {"input": fingerprint(dset), "layout": dset.layout, "pixel_space": dset.pixel_space,
           "experiment": experiment,
           "model": engine.source, "precision": _numerics(engine),
           "timestep_embedding": engine.describe().get("timestep_embedding"),
           "class_map": dit_ids.tolist(), "config": config.result_fields()}
    run = json.loads(json.dumps(run))  # tuples -> lists, as read back from run.json
    state = prepare_output(out, run, resume, overwrite, wait_s=30.0 if shard.count > 1 else 0.0,
                           inputs=(input_path,))
    where = f" (shard {shard.index}/{shard.count})" if shard.count > 1 else ""
    log(f"{len(dset)} {dset.layout} images {tuple(dset.images.shape[1:])} -> {out} on {engine.device_name()}{where}")

    done_before, recovered_now, times = _run_batches(engine, dset, dit_ids[dset.hard_labels], config, plan, state,
                                                     shard, progress, should_stop)
    timings.update(times)
    if recovered_now:
        timings["per_image"] = sum(times.values()) / recovered_now
    report = {
        "input": {"path": str(input_path), "layout": dset.layout, "images": len(dset),
                  "shape": list(dset.images.shape[1:]), "pixel_space": dset.pixel_space,
                  "soft_labels": dset.labels.ndim == 2, "warnings": dset.warnings,
                  "experiments": len(dset.extra.get("experiment_sizes", [])) or None,
                  "zca": "zca" in dset.extra},
        "config": config.to_dict(), "class_map": dit_ids.tolist(), "model": engine.describe(),
        "backend": engine.name, "device": engine.device_name(), "provider": engine.provider(),
        "shard": [shard.index, shard.count], "images_this_run": recovered_now, "images_before_resume": done_before,
    }
    missing = [i for i in range(len(dset)) if not _intact(_cached(state, i))]
    if missing or (shard.count > 1 and not _take_merge_lock(state)):
        report.update(merged=False, images_missing=len(missing), timings_s=_rounded(timings),
                      peak_memory={"cpu_peak_rss_mb": peak_rss_mb(), **engine.peak_memory()}, versions=versions())
        return report

    start = time.perf_counter()
    report["output"] = write_outputs(dset, state, out, write_pngs, max_png)
    timings["write"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - started
    report.update(merged=True, timings_s=_rounded(timings),
                  peak_memory={"cpu_peak_rss_mb": peak_rss_mb(), **engine.peak_memory()}, versions=versions())
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(render_markdown(report)))
    (state / "merge.lock").unlink(missing_ok=True)
    return report


def _numerics(engine) -> str | None:
    """The label of the runtime plan without what leaves the numbers as they are (a resumed run must match it):
    offloading is exact and slicing only reorders float sums, so an interrupted run can be resumed under a smaller
    plan; precision and VAE tiling change the result."""
    runtime = getattr(engine, "runtime", None)
    if runtime is None:
        return None
    p = runtime.plan
    return replace(p, offload="none", attention_slice="off", vae_slicing=False,
                   keep_modulation=p.keep_modulation and p.precision == "int8").label


def _memory_now(engine) -> tuple[float, str]:
    if engine.name == "torch" and engine.device.type == "cuda":
        import torch

        return torch.cuda.memory_allocated(engine.device) / 2**20, "GPU"
    from .report import current_rss_bytes

    return current_rss_bytes() / 2**20, "RSS"


def _plan_label(engine) -> str:
    runtime = getattr(engine, "runtime", None)
    if runtime is not None:
        return runtime.plan.label
    describe = engine.describe()
    return f"{describe.get('graph', 'dit')} {describe.get('precision', '')}".strip()


def _rounded(timings: dict) -> dict:
    return {k: round(v, 4) for k, v in timings.items()}


def _shard_device(device: str, shard: Shard, backend: str) -> str:
    """With several torch processes on CUDA, `auto` gives each its own GPU (LOCAL_RANK, as torchrun sets it)."""
    if backend == "torch" and device == "auto" and shard.count > 1 and "LOCAL_RANK" in os.environ:
        import torch

        return f"cuda:{os.environ['LOCAL_RANK']}" if torch.cuda.is_available() else "cpu"
    return device


def _intact(path: Path) -> bool:
    """A cached image whose safetensors header is readable and whose size matches it (a truncated or garbled
    file is not, and is recomputed)."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 2 <= n <= 1 << 20:
                return False
            header = json.loads(f.read(n))
        end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        return path.stat().st_size == 8 + n + end
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _run_batches(engine, dset: DistilledSet, dit_labels: np.ndarray, config: RecoverConfig, plan, state: Path,
                 shard: Shard, progress, should_stop) -> tuple[int, int, dict]:
    """Recover this shard's batches that are not cached yet; each finished image is saved at once."""
    from safetensors.numpy import save_file

    from .recovery import StageTimes, recover_batch

    batches = shard.batches(len(dset), config.batch_size)
    if shard.count == 1:   # temporary files of a write that was killed (SIGKILL, power loss); never results
        for stale in (state / "images").glob(".*"):
            stale.unlink(missing_ok=True)
    mine = [i for b in batches for i in b]
    done = {i for i in mine if _intact(_cached(state, i))}   # a damaged cached image is computed again
    done_before, recovered_now, times = len(done), 0, StageTimes()
    if progress:
        progress(Progress(done_before, len(mine), 0, *_memory_now(engine), _plan_label(engine)))
    for idx in batches:
        if done.issuperset(idx):
            continue
        y = recover_batch(engine, dset.images[idx], dit_labels[idx], idx, config, plan, dset.pixel_space,
                          mosaic=dset.layout == "ncfm", times=times)
        for i, img in zip(idx, y):
            atomic_write(_cached(state, i), lambda tmp, img=img: save_file({"image": np.ascontiguousarray(img)}, tmp))
        recovered_now += len(idx)
        done.update(idx)
        if progress:
            progress(Progress(len(done), len(mine), recovered_now, *_memory_now(engine), _plan_label(engine)))
        if should_stop and should_stop() and not done.issuperset(mine):
            raise Interrupted(f"stopped after {len(done)} of {len(mine)} images")
    return done_before, recovered_now, times.seconds


def write_outputs(dset: DistilledSet, state: Path, out: Path, write_pngs: bool, max_png: int | None) -> dict:
    """The recovered set in the input's layout, the PNGs (at most `max_png`) and the before/after grid."""
    from safetensors.numpy import load_file

    images = np.stack([load_file(str(_cached(state, i)))["image"] for i in range(len(dset))])
    set_path = write_set(dset.with_images(images), out)
    pngs = 0
    if write_pngs:
        labels = dset.hard_labels.tolist()
        for i in range(min(len(dset), max_png if max_png is not None else len(dset))):
            save_png(images[i], out / "png" / str(labels[i]) / f"{i:06d}.png", dset.pixel_space)
            pngs += 1
        grid = before_after_grid(dset.images, images, dset.pixel_space)
        from PIL import Image

        atomic_write(out / "grid.png", lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"), suffix=".png")
    return {"set": str(set_path), "png": str(out / "png") if write_pngs else None, "pngs_written": pngs,
            "grid": str(out / "grid.png") if write_pngs else None}
