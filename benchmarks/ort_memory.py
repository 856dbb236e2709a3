"""Peak memory of a whole recovery through ONNX Runtime, by session mode and session settings, beside torch fp32
in the same run: one batch of B images (DM IPC 1 schedule), each case in its own process (its peak RSS is its own;
the ONNX Runtime cases never import torch).

    python benchmarks/ort_memory.py --onnx DIR [--model DIR] [--images 1] [--cases lean,resident,...]

A case is MODE[+arena][+noprepack]: MODE lean (one graph held at a time) or resident; +arena turns ONNX Runtime's
CPU memory arena on; +noprepack turns weight pre-packing off. `torch-fp32` runs the torch backend on --model.
"""

import argparse
import json
import sys
import time

from child import run_child


def one(case: str, onnx_dir: str, model: str | None, images: int) -> dict:
    import numpy as np

    from diver_lite.core.config import RecoverConfig
    from diver_lite.core.schedule import build_schedule
    from diver_lite.pipeline.batches import recover_batches
    from diver_lite.pipeline.report import peak_rss_mb

    if case == "torch-fp32":
        from diver_lite.pipeline.engine import EngineSpec, build_engine

        backend = build_engine(EngineSpec(model=model, device="cpu"))
    else:
        from diver_lite.backends.ort import OrtBackend
        from diver_lite.backends.ort_sessions import SessionSettings

        mode, *flags = case.split("+")
        settings = SessionSettings(threads=1, arena="arena" in flags, prepack="noprepack" not in flags)
        backend = OrtBackend(onnx_dir, device="cpu", sessions=mode, settings=settings)
    size = backend.image_size
    x = np.random.default_rng(0).standard_normal((images, 3, size, size)).astype(np.float32) * 0.5
    y = np.arange(images) % backend.num_classes
    config = RecoverConfig.from_preset("dm", 1, "predd", batch_size=images)
    start = time.perf_counter()
    for _ in recover_batches(backend, x, y, [list(range(images))], config, build_schedule(config, backend.schedule),
                             "imagenet"):
        pass
    return {"case": case, "peak_rss_mb": round(peak_rss_mb(), 1), "s_per_image": round((time.perf_counter() - start)
                                                                                       / images, 2),
            "torch_imported": "torch" in sys.modules}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--model", default=None)
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--cases", default="torch-fp32,resident+arena,resident,lean+arena,lean,lean+noprepack")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.onnx, args.model, args.images)))
        return
    print(f"| case | peak RSS MB | x torch fp32 | s/image | torch imported |  ({args.images} image(s), {args.onnx})")
    print("|---|---|---|---|---|")
    ref = None
    for case in args.cases.split(","):
        cmd = [sys.executable, __file__, "--onnx", args.onnx, "--images", str(args.images), "--one", case]
        cmd += ["--model", args.model] if args.model else []
        r, why = run_child(cmd)
        if why:
            print(f"| {case} | {why} |", flush=True)
            continue
        ref = ref or (r["peak_rss_mb"] if case == "torch-fp32" else None)
        ratio = f"{r['peak_rss_mb'] / ref:.2f}" if ref else "-"
        print(f"| {case} | {r['peak_rss_mb']:.0f} | {ratio} | {r['s_per_image']} | {r['torch_imported']} |",
              flush=True)


if __name__ == "__main__":
    main()
