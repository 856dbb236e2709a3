"""Time per image of the DIVER recovery on this machine: the tiny model and a random-weight DiT-XL/2 + sd-vae
(architecture only: for time and memory, never for quality), fp32 and bf16, one torch thread.

Each configuration runs in its own process (clean peak RSS); the table is printed with ratios to fp32 measured in
the same run. Usage:
    OMP_NUM_THREADS=1 python benchmarks/time_per_image.py                 # tiny + XL, fp32 + bf16
    OMP_NUM_THREADS=1 python benchmarks/time_per_image.py --models tiny   # seconds
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

from diver_lite.core.config import RecoverConfig
from diver_lite.backends.torch_backend import TorchBackend
from diver_lite.core.recovery import StageTimes
from diver_lite.models.tiny import build_tiny_models
from diver_lite.models.tying import tie_embedders
from diver_lite.pipeline.batches import recover_batches
from diver_lite.pipeline.report import peak_rss_mb
from diver_lite.core.schedule import build_schedule
from xl import build_xl

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def run_one(model: str, dtype: str, t_init: int, steps: int, label_phase: str) -> dict:
    start = time.perf_counter()
    models = build_xl() if model == "xl" else build_tiny_models(seed=0)
    tie_embedders(models.transformer)
    models.transformer.to(DTYPES[dtype]).requires_grad_(False)
    models.vae.to(DTYPES[dtype]).requires_grad_(False)
    build_s = time.perf_counter() - start
    config = RecoverConfig(t_init=t_init, steps=steps, label_phase=label_phase)
    plan = build_schedule(config, models.schedule)
    backend = TorchBackend(models)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32) * 0.5
    label = np.array([207])
    x, label = np.concatenate([x, x]), np.array([207, 207])
    warmup = [[0]] if model == "tiny" else []          # one warm-up image (tiny), then the timed one
    stages = [StageTimes(), StageTimes()]
    ends = []
    start = time.perf_counter()
    for k, (idx, out) in enumerate(recover_batches(backend, x, label, warmup + [[1]], config, plan, "imagenet",
                                                   times=lambda k: stages[k])):
        ends.append(time.perf_counter())
    times = stages[len(warmup)]
    total = ends[-1] - (ends[-2] if warmup else start)
    cfg_steps = sum(p.conditional for p in plan.steps)
    return {"model": model, "dtype": dtype, "threads": torch.get_num_threads(), "steps": steps,
            "cfg_steps": cfg_steps, "uncond_steps": steps - cfg_steps, "build_s": round(build_s, 2),
            **{f"{k}_s": round(v, 3) for k, v in times.seconds.items()}, "per_image_s": round(total, 3),
            "finite": bool(np.isfinite(out).all()), "cpu_peak_rss_mb": peak_rss_mb()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["tiny", "xl"], choices=["tiny", "xl"])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    ap.add_argument("--t-init", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--label-phase", default="all", choices=["all", "concrete"])
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "DTYPE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.t_init, args.steps, args.label_phase)))
        return
    rows = []
    for model in args.models:
        for dtype in args.dtypes:
            cmd = [sys.executable, __file__, "--one", model, dtype, "--t-init", str(args.t_init), "--steps",
                   str(args.steps), "--label-phase", args.label_phase]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"\nOMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, t_init={args.t_init}, K={args.steps}, "
          f"label_phase={args.label_phase}, one 32x32 image\n")
    print("| model | dtype | CFG steps | encode s | sample s | s per step | decode s | s per image | vs fp32 | "
          "peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        base = next((b for b in rows if b["model"] == r["model"] and b["dtype"] == "fp32"), r)
        print(f"| {r['model']} | {r['dtype']} | {r['cfg_steps']}/{r['steps']} | {r['encode_s']:.3f} | "
              f"{r['sample_s']:.3f} | {r['sample_s'] / r['steps']:.3f} | {r['decode_s']:.3f} | "
              f"{r['per_image_s']:.3f} | {r['per_image_s'] / base['per_image_s']:.2f}x | {r['cpu_peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
