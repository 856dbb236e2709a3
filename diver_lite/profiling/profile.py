"""`diver-lite profile`: the fp32 reference and each plan on the same images and seeds, each in its own process
(profiling/worker.py) so that peaks are clean; then fidelity against the reference and one report (JSON, markdown
and a PNG chart). Pipeline layer: it reads the inputs and writes the report."""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from diver_lite.core.config import RecoverConfig
from diver_lite.core.metrics import psnr_from_mse
from diver_lite.layouts.files import atomic_write
from diver_lite.errors import ConfigError, OutputError
from diver_lite.output_policy import check_output, mark
from diver_lite.pipeline.engine import resolve_device
from diver_lite.core.prepare import to_unit
from diver_lite.memory.plan import RuntimePlan
from diver_lite.profiling.ort_plan import PREFIX, OrtPlan, onnx_folders

DEFAULT_PLANS = {"cpu": ["bf16", "int8", "bf16+offload-model", "int8+offload-model+vae-slicing",
                         "bf16+offload-stream+vae-slicing"],
                 "cuda": ["fp16", "bf16", "int8", "fp16+offload-model", "fp16+offload-stream",
                          "fp16+offload-sequential"]}
REFERENCE = RuntimePlan("fp32")   # run strict (TF32 off) on CUDA: profiling/worker.py


def parse_plan(label: str):
    """A plan from its label: ort-P[+resident] (ort_plan.py) or a RuntimePlan's."""
    return OrtPlan.parse(label) if label.strip().startswith(PREFIX) else RuntimePlan.parse(label)


def fidelity(ref_latents, latents, ref_images, images, pixel_space: str) -> dict:
    rel = float(np.linalg.norm(latents - ref_latents) / max(np.linalg.norm(ref_latents), 1e-12))
    a, b = to_unit(ref_images, pixel_space), to_unit(images, pixel_space)
    mse = float(np.mean((a - b) ** 2))
    return {"latent_rel_l2": round(rel, 6), "psnr_db": round(float(psnr_from_mse(mse)), 2) if mse > 0 else None}


def run_plan(spec: dict, work: Path, name: str, timeout_s: float | None) -> dict:
    """Run one plan in a fresh interpreter; returns its result (or {'error': ...})."""
    spec = dict(spec, result=str(work / name))
    spec_path = work / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env.setdefault("DIFFUSERS_VERBOSITY", "error")
    try:
        proc = subprocess.run([sys.executable, "-m", "diver_lite.profiling.worker", str(spec_path)], env=env,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"took longer than {timeout_s:.0f} s"}
    out = work / f"{name}.json"
    if not out.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        killed = proc.returncode in (-9, 137)
        return {"error": "killed (out of memory?)" if killed else f"worker failed: {tail[0][:300]}"}
    return json.loads(out.read_text())


def _check_arguments(images, dit_labels, pixel_space, out, plans, config) -> None:
    """The public boundary: wrong types end in one line before anything is read or written."""
    from diver_lite.core.prepare import is_pixel_space

    for value, kind, name, fix in (
            (images, np.ndarray, "images", "an array [N, C, H, W] (diver_lite.layouts.read_set(PATH).images)"),
            (dit_labels, np.ndarray, "dit_labels", "an integer array [N] (DistilledSet.hard_labels)"),
            (config, RecoverConfig, "config", "RecoverConfig(...)"), (plans, list, "plans", "a list of RuntimePlan"),
            (out, (str, os.PathLike), "out", "a folder path")):
        if not isinstance(value, kind):
            raise ConfigError(f"{name} is a {type(value).__name__}", f"pass {fix}")
    if images.ndim != 4 or dit_labels.shape != (len(images),) or not np.issubdtype(dit_labels.dtype, np.integer):
        raise ConfigError(f"images {images.shape} and dit_labels {dit_labels.shape} ({dit_labels.dtype}) do not "
                          "pair up", "pass images [N, C, H, W] and one integer label per image")
    bad = [type(p).__name__ for p in plans if not isinstance(p, (RuntimePlan, OrtPlan))]
    if bad:
        raise ConfigError(f"plans holds {', '.join(sorted(set(bad)))}, not plans",
                          "build each with diver_lite.profiling.profile.parse_plan('bf16'), ('int8+offload-model'), "
                          "('ort-int8'), ...")
    if not isinstance(pixel_space, str) or not is_pixel_space(pixel_space):
        raise ConfigError(f"unknown pixel space {pixel_space!r}", "pass the set's DistilledSet.pixel_space")


def profile(images: np.ndarray, dit_labels: np.ndarray, pixel_space: str, out: str | os.PathLike,
            plans: list[RuntimePlan], config: RecoverConfig, model=None, vae=None, device: str = "auto",
            judge: Callable[[np.ndarray], np.ndarray] | None = None, warmup_batches: int | None = None,
            timeout_s: float | None = None, overwrite: bool = False,
            log: Callable[[str], None] | None = None, onnx: list | None = None) -> dict:
    """Profile the reference and `plans` on `images` [N, C, H, W] (in `pixel_space`) with DiT labels
    `dit_labels`; writes profile.json, profile.md and profile.png under `out` and returns the report.
    `judge(images) -> predicted labels`: a real-data classifier whose agreement with the reference is reported.
    `onnx`: exported folders for the ONNX Runtime plans (ort-fp32, ort-int8, ...), one per precision."""
    _check_arguments(images, dit_labels, pixel_space, out, plans, config)
    log = log or (lambda msg: None)
    out = Path(out)
    check_output(out, [model, vae, *(onnx or [])], overwrite)
    folders = onnx_folders(onnx or [], plans)
    work = out / "plans"
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        mark(out, "profile")
    except OSError as e:
        raise OutputError(f"cannot write to {out}: {e.strerror}", "pick a writable -o folder")
    dev = resolve_device(device).type
    if warmup_batches is None:
        warmup_batches = 1 if dev == "cuda" and len(images) > config.batch_size else 0
    np.savez(work / "inputs.npz", images=images.astype(np.float32), dit_labels=dit_labels.astype(np.int64))
    spec = {"inputs": str(work / "inputs.npz"), "model": None if model is None else str(model),
            "vae": None if vae is None else str(vae), "device": device, "config": config.result_fields() |
            {"batch_size": config.batch_size, "guidance_window": list(config.window)},
            "pixel_space": pixel_space, "warmup_batches": warmup_batches}
    rows, ref = [], None
    for k, plan in enumerate([REFERENCE] + [p for p in plans if p != REFERENCE]):
        log(f"[{k + 1}/{len(plans) + 1}] {plan.label} ...")
        started = time.perf_counter()
        extra = {"onnx": folders[plan.precision]} if isinstance(plan, OrtPlan) else {}
        result = run_plan(spec | {"plan": plan.to_dict(), "reference": k == 0} | extra, work, f"plan{k}", timeout_s)
        result.setdefault("plan", plan.to_dict() | {"label": plan.label})
        result["wall_s"] = round(time.perf_counter() - started, 1)
        if "error" not in result:
            with np.load(work / f"plan{k}.npz") as z:
                lat, img = z["latents"], z["images"]
            if ref is None:
                ref = (lat, img, judge(img) if judge else None)
            result["fidelity"] = fidelity(ref[0], lat, ref[1], img, pixel_space)
            if judge is not None:
                result["fidelity"]["judge_agreement"] = round(float(np.mean(judge(img) == ref[2])), 4)
            log(f"    peak {_peak_text(result)}, {result['time_per_image_s']:.3f} s/image, "
                f"{result['time_per_step_s']:.3f} s/step, PSNR {result['fidelity']['psnr_db'] or 'inf'} dB")
        else:
            log(f"    failed: {result['error']}")
            if k == 0:   # nothing to compare with: leave no plan files behind
                shutil.rmtree(work, ignore_errors=True)
                raise ConfigError(f"the fp32 reference failed: {result['error']}", "check --model and --device")
        rows.append(result)
    report = {"device_type": dev, "images": int(len(images)), "config": config.to_dict(),
              "model": "embedded default" if model is None else str(model), "warmup_batches": warmup_batches,
              "plans": _with_ratios(rows, dev)}
    from diver_lite.pipeline.report import versions

    report["versions"] = versions()
    atomic_write(out / "profile.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    atomic_write(out / "profile.md", lambda tmp: Path(tmp).write_text(render_profile(report)))
    from PIL import Image

    chart = profile_chart(report)
    atomic_write(out / "profile.png", lambda tmp: Image.fromarray(chart).save(tmp, format="PNG"), suffix=".png")
    return report


def peak_mb(result: dict) -> float | None:
    """The peak a plan is judged by: torch's peak allocated memory on CUDA, the process's peak RSS on the CPU."""
    peak = result.get("peak", {})
    return peak.get("cuda_allocated_mb", peak.get("cpu_rss_mb"))


def _peak_text(result: dict) -> str:
    p = result["peak"]
    if "cuda_allocated_mb" in p:
        return f"{p['cuda_allocated_mb']:.0f} MB GPU (torch), {p.get('nvml_process_mb', '?')} MB (NVML)"
    return f"{p['cpu_rss_mb']:.0f} MB RSS"


def _with_ratios(rows: list[dict], dev: str) -> list[dict]:
    ref = rows[0]
    for r in rows:
        if "error" in r or "error" in ref:
            continue
        r["peak_ratio"] = round(peak_mb(r) / peak_mb(ref), 3)
        r["step_time_ratio"] = round(r["time_per_step_s"] / ref["time_per_step_s"], 3)
        r["image_time_ratio"] = round(r["time_per_image_s"] / ref["time_per_image_s"], 3)
        if r.get("estimate_mb"):
            r["estimate_error"] = round(r["estimate_mb"]["total"] / peak_mb(r) - 1, 3)
    return rows


def _estimate_text(r: dict) -> str:
    if not r.get("estimate_mb"):
        return "-"
    return f"{r['estimate_mb']['total']:.0f} ({100 * r.get('estimate_error', 0):+.0f}%)"


def render_profile(report: dict) -> str:
    dev = report["device_type"]
    peak_name = "peak GPU (torch alloc.)" if dev == "cuda" else "peak RSS"
    lines = [f"# diver-lite profile ({report['model']}, {report['images']} images, {dev})", "",
             f"| plan | {peak_name} MB | x fp32 | estimate MB (err) | s/step | x fp32 | s/image | latent rel-L2 | "
             f"PSNR dB | judge agree |" + (" NVML MB |" if dev == "cuda" else ""),
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if dev == "cuda" else "")]
    for r in report["plans"]:
        label = r["plan"]["label"]
        if "error" in r:
            lines.append(f"| {label} | failed: {r['error']} |" + " |" * (9 if dev == "cuda" else 8))
            continue
        f = r["fidelity"]
        agree = f.get("judge_agreement")
        lines.append(
            f"| {label} | {peak_mb(r):.0f} | {r.get('peak_ratio', 1):.2f} | {_estimate_text(r)} | "
            f"{r['time_per_step_s']:.3f} | "
            f"{r.get('step_time_ratio', 1):.2f} "
            f"| {r['time_per_image_s']:.3f} | {f['latent_rel_l2']:.2e} | {f['psnr_db'] if f['psnr_db'] else 'inf'} | "
            f"{'' if agree is None else f'{100 * agree:.1f}%'} |"
            + (f" {r['peak'].get('nvml_process_mb', '')} |" if dev == "cuda" else ""))
    c = report["config"]
    lines += ["", f"Recovery: t_init {c['t_init']}, K {c['effective_steps']}, batch {c['batch_size']}, seed "
              f"{c['seed']}; each plan in its own process; timings exclude {report['warmup_batches']} warm-up "
              "batch(es). Ratios are against the fp32 reference of the same run.", ""]
    return "\n".join(lines)


def profile_chart(report: dict, height: int = 420) -> np.ndarray:
    """Two panels, one bar per plan, both relative to the fp32 reference: peak memory (linear) and time per image
    (log scale, so that a 40x plan does not flatten the others)."""
    import math

    from PIL import Image, ImageDraw

    rows = [r for r in report["plans"] if "error" not in r]
    width = max(760, 60 + 100 * len(rows))
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    left, slot = 50, (width - 60) / max(1, len(rows))
    panels = [("peak memory (x fp32)", "peak_ratio", (31, 119, 180), 40, 160, False),
              ("time per image (x fp32, log scale)", "image_time_ratio", (255, 127, 14), 200, 316, True)]
    for title, key, colour, top, bottom, log in panels:
        values = [max(r.get(key, 1.0), 1e-3) for r in rows]
        lo, hi = (min(values + [1.0]) / 1.5, max(values + [1.0]) * 1.5) if log else (0.0, max(values + [1.0]))
        scale = (lambda v: math.log(v / lo) / math.log(hi / lo)) if log else (lambda v: v / hi)
        draw.text((left, top - 18), title, fill=colour)
        draw.line([left, bottom, width - 10, bottom], fill=(0, 0, 0))
        if log:   # the 1x line
            y1 = bottom - (bottom - top) * scale(1.0)
            draw.line([left, y1, width - 10, y1], fill=(180, 180, 180))
        for g, v in enumerate(values):
            x0 = left + g * slot + slot * 0.2
            y = bottom - (bottom - top) * scale(v)
            draw.rectangle([x0, y, x0 + slot * 0.6, bottom], fill=colour)
            draw.text((x0, y - 12), f"{v:.2f}", fill=(0, 0, 0))
    for g, r in enumerate(rows):
        x0 = left + g * slot + slot * 0.1
        draw.multiline_text((x0, 326), r["plan"]["label"].replace("+", "\n+"), fill=(0, 0, 0), spacing=1)
    return np.asarray(img)
