"""What attention slicing saves: peak memory and time of one CFG forward (batch 2) through DiT-XL/2-width blocks
(2 of its 28 blocks, random weights) at 256 tokens (256² images), 1024 (512²) and 4096 (1024²), for diffusers'
default processor (torch SDPA), the classic processor that forms the whole score matrix, and sliced processors.
Each case runs in its own process; the peak is above the memory held before the forward.

    python benchmarks/attention_slicing.py [--device cpu|cuda] [--tokens 256,1024,4096]
"""

import argparse
import json
import subprocess
import sys
import time

CASES = ["default", "classic", "slice-1", "slice-4"]


def one(device: str, tokens: int, case: str) -> dict:
    import torch
    from diffusers import DiTTransformer2DModel
    from diffusers.models.attention_processor import AttnProcessor

    from diver_lite.memory.attention_slicing import attention_modules, set_attention_slice
    from diver_lite.pipeline.report import current_rss_bytes, peak_rss_mb

    side = int(tokens ** 0.5) * 2
    dtype = torch.float16 if device == "cuda" else torch.float32
    model = DiTTransformer2DModel(num_layers=2, sample_size=side, out_channels=8).to(device, dtype).eval()
    if case == "classic":
        for m in attention_modules(model):
            m.set_processor(AttnProcessor())
    elif case.startswith("slice-"):
        set_attention_slice(case.split("-")[1], model)
    x = torch.randn(2, 4, side, side, device=device, dtype=dtype)
    t, y = torch.tensor([500, 500], device=device), torch.tensor([1, 1000], device=device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = current_rss_bytes() / 2**20
    with torch.no_grad():
        model(x, timestep=t, class_labels=y)   # warm-up (and the peak on the CPU)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(3):
            model(x, timestep=t, class_labels=y)
        if device == "cuda":
            torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / 3
    if device == "cuda":
        extra = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        extra = peak_rss_mb() - before
    return {"tokens": tokens, "case": case, "extra_mb": round(extra, 1), "seconds": round(seconds, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tokens", default="256,1024,4096")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.device, int(args.one[0]), args.one[1])))
        return
    rows = []
    for tokens in map(int, args.tokens.split(",")):
        for case in CASES:
            out = subprocess.run([sys.executable, __file__, "--device", args.device, "--one", str(tokens), case],
                                 capture_output=True, text=True)
            line = (out.stdout.strip().splitlines() or ["{}"])[-1]
            rows.append(json.loads(line) if line.startswith("{") else {"tokens": tokens, "case": case,
                                                                         "error": out.stderr[-300:]})
    print(f"| tokens | processor | peak above resident MB | s per CFG forward ({args.device}, 2 XL blocks) |")
    print("|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['tokens']} | {r['case']} | failed | |")
        else:
            print(f"| {r['tokens']} | {r['case']} | {r['extra_mb']} | {r['seconds']} |")


if __name__ == "__main__":
    main()
