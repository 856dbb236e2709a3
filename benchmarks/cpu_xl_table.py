"""The CPU table for DiT-XL/2 (random weights, benchmarks/xl.py: for time and memory, never for quality): per plan and
batch, the time of one DiT forward without and with CFG, the images/s per core that gives on the DM IPC 1 schedule
(t_init 10, K 15: 7 CFG steps and 8 unconditional ones), the peak RSS, and the share of this machine's matmul rate
(fp32, bf16, int8, measured in the same run) that the DiT's FLOPs reach (237 GFLOP per image-forward; the rate
of the plan's compute type: fp32 for fp32, bf16 for bf16 and fp8 storage, int8 for int8).

Each plan runs in its own process (its peak RSS is its own), one torch thread. The schedule's time per image is
7 t_cfg(B) / B + 8 t_unc(B) / B + the VAE's encode and decode per image (fp32, measured once at batch 1): derived
from measured forwards, not a timed end-to-end recovery, and said so in the table.

    OMP_NUM_THREADS=1 python benchmarks/cpu_xl_table.py [--plans fp32,bf16,int8,fp8] [--batches 1,4,16]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

CFG_STEPS, UNCOND_STEPS = 7, 8          # DM IPC 1 under PReDD's preset: 15 steps, labels in the last 7


def rates() -> dict:
    """This machine's matmul rates (FLOP/s, one thread): fp32 and bf16 on 2048², int8 (torch._int_mm) on 2048²."""
    import torch

    from throughput import matmul_rate

    out = {"fp32": matmul_rate("cpu", torch.float32), "bf16": matmul_rate("cpu", torch.bfloat16)}
    try:
        n = 2048
        a = torch.randint(-100, 100, (n, n), dtype=torch.int8)
        b = torch.randint(-100, 100, (n, n), dtype=torch.int8)
        torch._int_mm(a, b)
        start = time.perf_counter()
        for _ in range(3):
            torch._int_mm(a, b)
        out["int8"] = 2 * n ** 3 * 3 / (time.perf_counter() - start)
    except (RuntimeError, AttributeError) as e:
        out["int8_error"] = str(e)[:80]
    return out


def one(plan: str, batches: list[int]) -> None:
    import numpy as np
    import torch

    from diver_lite.memory.plan import RuntimePlan
    from diver_lite.pipeline.engine import EngineSpec, build_engine
    from diver_lite.pipeline.report import peak_rss_mb
    from throughput import dit_flops
    from xl import build_xl

    torch.set_num_threads(1)
    start = time.perf_counter()
    backend = build_engine(EngineSpec(model=build_xl(), device="cpu", plan=RuntimePlan.parse(plan)),
                           max_batch=max(batches))
    load_s = time.perf_counter() - start
    flops = dit_flops(backend.models.transformer)
    vae_s = None
    if plan == "fp32":
        x = np.random.default_rng(0).standard_normal((1, 3, 256, 256)).astype(np.float32) * 0.5
        start = time.perf_counter()
        mean, std = backend.encode(x)
        backend.decode(mean)
        vae_s = time.perf_counter() - start
    for k, batch in enumerate(batches):
        g = torch.Generator().manual_seed(batch)
        x = torch.randn(batch, 4, 32, 32, generator=g)
        labels = torch.arange(batch) % 1000
        times = {}
        for kind, lab in (("unc", None), ("cfg", labels)):
            if k == 0:
                backend.denoiser(x, 500, lab, 4.0)          # warm-up (allocator, packed weights), first batch only
            start = time.perf_counter()
            backend.denoiser(x, 500, lab, 4.0)
            times[kind] = time.perf_counter() - start
        per_image = (CFG_STEPS * times["cfg"] + UNCOND_STEPS * times["unc"]) / batch
        forwards = (2 * CFG_STEPS + UNCOND_STEPS) * batch
        print(json.dumps({"plan": backend.runtime.plan.label, "batch": batch, "t_unc_s": round(times["unc"], 3),
                          "t_cfg_s": round(times["cfg"], 3), "dit_s_per_image": round(per_image, 2),
                          "dit_gflops_per_s": round(flops * forwards / (per_image * batch) / 1e9, 1),
                          "peak_rss_mb": round(peak_rss_mb()), "load_s": round(load_s, 1),
                          **({"vae_s_per_image": round(vae_s, 2)} if vae_s is not None else {})}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", default="fp32,bf16,int8,fp8")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.one:
        one(args.one, batches)
        return
    from child import stream_child
    from diver_lite.machine import cpu_name

    r = rates()
    print(f"CPU: {cpu_name()}; one torch thread; matmul rates (GFLOP/s): "
          + ", ".join(f"{k} {v / 1e9:.1f}" if isinstance(v, float) else f"{k}: {v}" for k, v in r.items()) + "\n")
    print("| plan | batch | DiT forward, no CFG (s) | with CFG (s) | DiT s per image, DM IPC 1 schedule | images/s "
          "per core (DiT + VAE) | peak RSS MB | DiT GFLOP/s | of the plan's matmul rate |")
    print("|---|---|---|---|---|---|---|---|---|")
    vae = [None]

    def show(row: dict) -> None:
        if "vae_s_per_image" in row:
            vae[0] = row["vae_s_per_image"]
        kind = {"fp32": "fp32", "int8": "int8"}.get(row["plan"].split("+")[0], "bf16")
        rate = r.get(kind)
        total = row["dit_s_per_image"] + (vae[0] or 0)
        share = f"{100 * row['dit_gflops_per_s'] * 1e9 / rate:.0f} % of {kind}" if rate else "-"
        print(f"| {row['plan']} | {row['batch']} | {row['t_unc_s']} | {row['t_cfg_s']} | {row['dit_s_per_image']} | "
              f"{1 / total:.4f} | {row['peak_rss_mb']} | {row['dit_gflops_per_s']} | {share} |", flush=True)

    for plan in args.plans.split(","):
        why = stream_child([sys.executable, __file__, "--one", plan, "--batches", args.batches], args.timeout, show)
        if why:
            print(f"| {plan} | - | {why} |", flush=True)
    print(f"\nVAE encode + decode per image (fp32, batch 1): {vae[0]} s, included in images/s; the schedule's time is "
          f"derived from the measured forwards ({CFG_STEPS} with CFG, {UNCOND_STEPS} without), not timed end to end.")


if __name__ == "__main__":
    main()
