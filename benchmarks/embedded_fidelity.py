"""Fidelity of each runtime against torch fp32 on the embedded default prior (real weights): the shipped DM demo
set recovered with DM's IPC 1 preset by torch bf16, fp8 storage and int8, and by ONNX Runtime fp32 and int8 graphs;
PSNR of the recovered images in [0, 1] against torch fp32. One JSON line per runtime.

    OMP_NUM_THREADS=1 python benchmarks/embedded_fidelity.py [SET]        # default: examples/demo_dm_ipc1.pt
"""
import json
import sys
import tempfile

import numpy as np

from diver_lite.backends.ort import OrtBackend
from diver_lite.core.config import RecoverConfig
from diver_lite.core.metrics import psnr_from_mse
from diver_lite.core.prepare import to_unit
from diver_lite.core.recovery import recover_batch
from diver_lite.core.schedule import build_schedule
from diver_lite.export.onnx import export_models
from diver_lite.layouts import read_set
from diver_lite.memory.plan import RuntimePlan
from diver_lite.pipeline.engine import EngineSpec, build_engine

dset = read_set(sys.argv[1] if len(sys.argv) > 1 else "examples/demo_dm_ipc1.pt")
config = RecoverConfig.from_preset("dm", 1, "predd")


def run(backend) -> np.ndarray:
    schedule = build_schedule(config, backend.schedule)
    out = recover_batch(backend, dset.images, dset.hard_labels, list(range(len(dset))), config, schedule,
                        dset.pixel_space)
    return np.clip(to_unit(out, dset.pixel_space), 0, 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(psnr_from_mse(float(((a - b) ** 2).mean())))


reference = build_engine(EngineSpec(device="cpu"))
ref = run(reference)
for plan in ("bf16", "fp8", "int8"):
    print(json.dumps({"runtime": f"torch {plan}", "psnr_db": round(psnr(run(build_engine(
        EngineSpec(device="cpu", plan=RuntimePlan.parse(plan)))), ref), 2)}), flush=True)
for precision in ("fp32", "int8"):
    with tempfile.TemporaryDirectory() as d:
        export_models(reference.models, d, precision, graphs=("dit", "vae_encoder", "vae_decoder"))
        print(json.dumps({"runtime": f"onnxruntime {precision}",
                          "psnr_db": round(psnr(run(OrtBackend(d, device="cpu")), ref), 2)}), flush=True)
