"""Images per second by plan and batch size (#15), with the peak memory and the fraction of the device's measured
bf16 matmul rate the DiT's FLOPs reach; then the plan and batch `--vram-budget GB --batch-size auto` chooses, and
that choice under a hard memory cap (torch.cuda.set_per_process_memory_fraction) standing in for a small card.
Each plan runs in its own process. DM IPC 1 schedule (t_init 10, K 15: 7 CFG steps, 8 unconditional).

    python benchmarks/throughput.py --model DIR [--device cuda] [--plans fp16,bf16,...] [--batches 1,8,32,64]
                                    [--budget 4] [--cap 4]

FLOPs: a DiT forward of one image is counted from its shapes: 2 x in x out x tokens for the linears that act on
every token, 2 x in x out once for those that act on the image's conditioning (the adaLN modulation and the
timestep/class embedders of each block, the final modulation), plus the attention products; 237 GFLOP for DiT-XL/2
at 256². Weights are counted by their logical shape (in x out), so packed 4-bit weights count in full. A CFG step is
two forwards. The VAE's time is in images/s but not in the FLOP fraction. Each plan's rows are printed as they
finish (a plan that runs out of time keeps the rows it finished).
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))      # the repository, when diver_lite is not installed

from child import stream_child


def per_image(name: str) -> bool:
    """A linear that acts once per image (on the timestep/class conditioning), not once per token."""
    return ".norm1." in f".{name}." or name.startswith("proj_out_1") or ".emb." in f".{name}."


def dit_flops(transformer) -> float:
    """FLOPs of one DiT forward for one image (multiply-adds x 2)."""
    cfg = transformer.config
    tokens = (cfg.sample_size // cfg.patch_size) ** 2
    hidden = cfg.num_attention_heads * cfg.attention_head_dim
    macs = 0
    for name, m in transformer.named_modules():
        if hasattr(m, "in_features") and hasattr(m, "out_features"):
            macs += m.in_features * m.out_features * (1 if per_image(name) else tokens)
    attention = 2 * tokens * tokens * hidden * cfg.num_layers       # QK^T and AV
    return 2.0 * (macs + attention)


def matmul_rate(device: str, dtype=None) -> float:
    """The device's matmul rate in `dtype` (default bf16), measured (FLOP/s) on 8192² (CUDA) or 2048² (CPU)
    products."""
    import torch

    dtype = dtype or torch.bfloat16
    n = 8192 if device.startswith("cuda") else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    reps = 20 if device.startswith("cuda") else 3
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync()
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def emit(row: dict) -> None:
    """One finished row, at once, as a JSON line (the parent streams them)."""
    print(json.dumps(row), flush=True)


def one(args, plan_label: str, batches: list[int], budget: float | None, cap: float | None) -> None:
    import numpy as np
    import torch

    from diver_lite.core.config import RecoverConfig
    from diver_lite.core.schedule import build_schedule
    from diver_lite.memory.plan import RuntimePlan
    from diver_lite.pipeline.batches import recover_batches
    from diver_lite.pipeline.engine import EngineSpec, build_engine
    from diver_lite.pipeline.report import peak_rss_mb

    cuda = args.device.startswith("cuda")
    context_mb = None
    if cap and cuda:   # a card of `cap` GB: its CUDA context comes out of the same memory as the tensors
        torch.cuda.init()
        torch.zeros(1, device=args.device)
        free, total = torch.cuda.mem_get_info()
        context = total - free - torch.cuda.memory_reserved()
        context_mb = context / 2**20
        torch.cuda.set_per_process_memory_fraction(max(0.0, cap * 2**30 - context) / total)
    if budget:
        spec = EngineSpec(model=args.model, device=args.device, budget_gb=budget, auto_batch=True)
        backend = build_engine(spec, max_batch=max(batches))
        batches = [backend.batch_size]
    else:
        backend = build_engine(EngineSpec(model=args.model, device=args.device, plan=RuntimePlan.parse(plan_label)),
                               max_batch=max(batches))
    label = backend.runtime.plan.label
    flops = dit_flops(backend.models.transformer)
    rows = []
    for batch in batches:
        size = backend.image_size
        x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32) * 0.5
        y = np.arange(batch) % backend.num_classes
        config = RecoverConfig.from_preset("dm", 1, "predd", batch_size=batch)
        schedule = build_schedule(config, backend.schedule)
        forwards = sum(2 if p.conditional else 1 for p in schedule.steps)    # per image
        steps, sync = len(schedule.steps), (torch.cuda.synchronize if cuda else (lambda: None))
        try:
            for k in range(2):                      # a warm-up batch (compilation, allocator), then the timed one
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                sync()
                start = time.perf_counter()
                for _ in recover_batches(backend, x, y, [list(range(batch))], config, schedule, "imagenet"):
                    pass
                sync()
                seconds = time.perf_counter() - start
        except torch.OutOfMemoryError:
            emit({"plan": label, "batch": batch, "error": "out of memory"})
            torch.cuda.empty_cache()
            continue
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb()
        emit({"plan": label, "batch": batch, "images_per_s": round(batch / seconds, 3),
              "s_per_step": round(seconds / steps, 4), "peak_mb": round(peak, 1),
              "dit_tflops": round(flops * forwards * batch / seconds / 1e12, 4),
              **({"cuda_context_mb": round(context_mb)} if context_mb is not None else {})})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--plans", default="fp16,bf16,bf16+compile,fp8,fp8-compute,int8,nf4,fp16+offload-stream,"
                                       "fp8+offload-stream")
    ap.add_argument("--batches", default="1,8,32,64")
    ap.add_argument("--budget", type=float, default=4.0, help="GB for the --vram-budget rows (0: none)")
    ap.add_argument("--cap", type=float, default=4.0, help="GB of the capped row: tensors and CUDA context together")
    ap.add_argument("--timeout", type=float, default=240, help="seconds per plan (its finished rows are kept)")
    ap.add_argument("--rows", default=None, help="also append each row as a JSON line to this file")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--one-budget", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--one-cap", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.one:
        one(args, args.one, batches, args.one_budget, args.one_cap)
        return
    rate = matmul_rate(args.device)
    print(f"measured bf16 matmul rate: {rate / 1e12:.1f} TFLOP/s ({args.device})\n")
    print("| plan | batch | images/s | s/step | peak MB | DiT TFLOP/s | of bf16 matmul rate |")
    print("|---|---|---|---|---|---|---|")
    cases = [(p, None, None) for p in args.plans.split(",") if p]
    if args.budget:          # --budget 0: the plans alone
        cases += [("budget", args.budget, None), ("budget", args.budget, args.cap)]
    for plan, budget, cap in cases:
        cmd = [sys.executable, __file__, "--device", args.device, "--batches", args.batches, "--one", plan]
        cmd += ["--model", args.model] if args.model else []
        cmd += ["--one-budget", str(budget)] if budget else []
        cmd += ["--one-cap", str(cap)] if cap else []
        name = plan if not budget else f"--vram-budget {budget:g} --batch-size auto" + (f", {cap:g} GB cap" if cap
                                                                                        else "")
        def show(r: dict, name=name, budget=budget) -> None:
            shown = f"{name}: {r['plan']}" if budget else r["plan"]
            if args.rows:
                with open(args.rows, "a") as f:
                    f.write(json.dumps({"case": name, **r, "matmul_tflops": round(rate / 1e12, 2)}) + "\n")
            if "error" in r:
                print(f"| {shown} | {r['batch']} | {r['error']} |", flush=True)
                return
            ctx = f" (context {r['cuda_context_mb']} MB)" if "cuda_context_mb" in r else ""
            print(f"| {shown}{ctx} | {r['batch']} | {r['images_per_s']} | {r['s_per_step']} | {r['peak_mb']:.0f} | "
                  f"{r['dit_tflops']} | {100 * r['dit_tflops'] * 1e12 / rate:.1f} % |", flush=True)

        why = stream_child(cmd, args.timeout, show)
        if why:
            print(f"| {name} | - | {why} |", flush=True)


if __name__ == "__main__":
    main()
