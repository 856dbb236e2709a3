"""The batch term of the memory estimate against measurement: one batch of B real Fashion-MNIST test images
recovered by the embedded default (DM IPC 1 schedule) under a plan, each B in its own process; prints the
estimated and the measured peak (RSS on the CPU, torch's peak allocated memory on CUDA) and images/s.

    python benchmarks/batch_memory.py [--device cpu|cuda] [--plans fp32,bf16,int8,fp8] [--batches 1,16,64,256]
                                      [--model DIR]
"""

import argparse
import json
import sys
import time

from child import run_child


def one(device: str, plan_label: str, batch: int, model: str | None) -> dict:
    import numpy as np

    from diver_lite.core.config import RecoverConfig
    from diver_lite.core.prepare import from_unit
    from diver_lite.core.schedule import build_schedule
    from diver_lite.experiments.fashion_mnist import data as fm
    from diver_lite.memory.estimate import estimate_peak_bytes
    from diver_lite.memory.plan import RuntimePlan
    from diver_lite.memory.runtime import sizes_of
    from diver_lite.models.open import open_models
    from diver_lite.pipeline.batches import recover_batches
    from diver_lite.pipeline.engine import EngineSpec, build_engine
    from diver_lite.pipeline.report import current_rss_bytes, peak_rss_mb

    plan = RuntimePlan.parse(plan_label)
    images, labels, _ = fm.load("test")
    x = from_unit(fm.to_images(images[np.arange(batch) % len(images)]), "imagenet").astype(np.float32)
    y = labels[np.arange(batch) % len(labels)]
    config = RecoverConfig.from_preset("dm", 1, "predd", batch_size=batch)
    estimate = estimate_peak_bytes(plan, sizes_of(open_models(model)), batch, device, current_rss_bytes())
    backend = build_engine(EngineSpec(model=model, device=device, plan=plan), batch_size=batch)
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()
    schedule = build_schedule(config, backend.schedule)
    start = time.perf_counter()
    for _ in recover_batches(backend, x, y, [list(range(batch))], config, schedule, "imagenet"):
        pass
    seconds = time.perf_counter() - start
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = peak_rss_mb()
    return {"batch": batch, "estimate_mb": round(estimate["total"] / 2**20, 1), "peak_mb": round(peak, 1),
            "images_per_s": round(batch / seconds, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--plans", default="fp32,bf16,int8,fp8")
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--model", default=None)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.device, args.plans, args.one, args.model)))
        return
    print(f"| plan | batch | estimated peak MB | measured peak MB | estimate error | images/s |  ({args.device})")
    print("|---|---|---|---|---|---|")
    for plan, b in ((p, int(v)) for p in args.plans.split(",") for v in args.batches.split(",")):
        cmd = [sys.executable, __file__, "--device", args.device, "--plans", plan, "--one", str(b)]
        cmd += ["--model", args.model] if args.model else []
        r, why = run_child(cmd)
        if why:
            print(f"| {plan} | {b} | {why} |")
            continue
        error = 100 * (r["estimate_mb"] / r["peak_mb"] - 1)
        print(f"| {plan} | {b} | {r['estimate_mb']:.0f} | {r['peak_mb']:.0f} | {error:+.0f}% | {r['images_per_s']} |",
              flush=True)


if __name__ == "__main__":
    main()
