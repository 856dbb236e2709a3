"""One CFG step of a random-weight DiT-XL/2 (batch 1, doubled to 2 by CFG), on one CPU thread: torch fp32, torch
bf16, ONNX Runtime fp32 and ONNX Runtime int8 (dynamic quantization), measured in the same run.

    OMP_NUM_THREADS=1 python benchmarks/onnx_speed.py [--workdir /tmp/diver-xl-onnx] [--repeats 3]

Needs ~16 GB RAM (quantizing the 2.7 GB graph is the peak) and ~10 minutes. Prints a markdown table with ratios to
torch fp32 and each variant's relative error against torch fp32.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from diver_lite.backends.denoiser import TorchDenoiser  # noqa: E402
from diver_lite.export.graphs.dit import DiTGraph  # noqa: E402
from diver_lite.export.onnx import convert_graph, export_graph, example_inputs  # noqa: E402
from diver_lite.backends.ort_sessions import OrtSession, SessionSettings  # noqa: E402
from diver_lite.backends.providers import CPU  # noqa: E402
from diver_lite.core.guidance import cfg_denoise  # noqa: E402
from diver_lite.models.tying import tie_embedders  # noqa: E402
from diver_lite.pipeline.report import peak_rss_mb  # noqa: E402
from xl import build_xl  # noqa: E402


def timed(fn, repeats: int):
    fn()  # warm-up, reported apart
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/diver-xl-onnx"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    models = build_xl(with_vae=False)
    tie_embedders(models.transformer)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 32, 32)).astype(np.float32)
    labels, t, s = np.array([207]), 500, 4.0
    rows = {}

    def torch_step(transformer):   # a denoiser reads its dtype from the weights when made
        den = TorchDenoiser(transformer, 1000)
        return lambda: den(torch.from_numpy(x), t, torch.from_numpy(labels), s).numpy()

    rows["torch fp32"] = timed(torch_step(models.transformer), args.repeats)
    ref = rows["torch fp32"][1]
    models.transformer.to(torch.bfloat16)
    rows["torch bf16"] = timed(torch_step(models.transformer), args.repeats)
    models.transformer.float()

    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / "dit.onnx"
    start = time.perf_counter()
    export_graph("dit", DiTGraph(models.transformer).eval(), example_inputs("dit", models, 3), path, dynamic=True)
    export_s = time.perf_counter() - start
    del models
    for precision in ("fp32", "int8"):
        if precision == "int8":  # quantize the fp32 graph in place
            start = time.perf_counter()
            convert_graph(path, "int8")
            quant_s = time.perf_counter() - start
        session = OrtSession(path, [CPU], None, SessionSettings(threads=threads))
        run = lambda x_, t_, y_: session(x_, np.full((x_.shape[0],), t_, np.int64), y_.astype(np.int64))[0]  # noqa
        ort_step = lambda: cfg_denoise(run, np.concatenate, x, t, labels, np.array([1000]), s, 3)  # noqa: E731
        rows[f"onnxruntime {precision}"] = timed(ort_step, args.repeats)
        del session
    size = lambda p: sum(f.stat().st_size for f in args.workdir.glob(p)) / 2**20  # noqa: E731

    print(f"\nrandom DiT-XL/2, one CFG step (batch 1 -> 2), {threads} thread(s), median of {args.repeats} after a "
          f"warm-up; export {export_s:.0f} s, int8 quantization {quant_s:.0f} s, peak RSS {peak_rss_mb():.0f} MB, "
          f"int8 graph {size('dit.onnx*'):.0f} MiB\n")
    print("| runtime | s per CFG step | vs torch fp32 | rel. L2 error vs torch fp32 |")
    print("|---|---|---|---|")
    base = rows["torch fp32"][0]
    for name, (sec, out) in rows.items():
        err = float(np.linalg.norm(out - ref) / np.linalg.norm(ref))
        print(f"| {name} | {sec:.2f} | {sec / base:.2f}x | {err:.2e} |")


if __name__ == "__main__":
    main()
