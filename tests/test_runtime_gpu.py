"""The memory plans on CUDA (run with -m gpu on a machine with a GPU; benchmarks/gpu_profile.sh runs them).
Real weights (the embedded default): every plan stays close to the fp32 reference, bitsandbytes int8 replaces the
block linears, streaming keeps only a block or two on the GPU."""

import numpy as np
import pytest
import torch

from diver_lite.core.config import RecoverConfig
from diver_lite.memory.plan import RuntimePlan

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CONFIG = RecoverConfig(t_init=6, steps=7, batch_size=4)


def _recover(plan, model=None):
    from diver_lite.experiments.fashion_mnist import data as fm
    from diver_lite.pipeline.engine import EngineSpec, build_engine
    from diver_lite.core.prepare import from_unit, to_unit
    from diver_lite.core.recovery import recover_batch
    from diver_lite.core.schedule import build_schedule

    raw, labels, _ = fm.load("test")
    x, y = from_unit(fm.to_images(raw[:8]), "imagenet"), labels[:8]
    backend = build_engine(EngineSpec(model=model, device="cuda", plan=plan))
    out = recover_batch(backend, x, y, list(range(8)), CONFIG, build_schedule(CONFIG, backend.schedule), "imagenet")
    return to_unit(out, "imagenet"), backend


def _psnr(out, reference) -> float:
    from diver_lite.core.metrics import psnr

    return float(psnr(out, reference))      # equal images: 200 dB (the MSE floor), above every bar


@pytest.fixture(scope="module")
def reference():
    """Strict fp32 (TF32 off): the tf32 tactic is on by default, `profile`'s reference is strict too."""
    return _recover(RuntimePlan(tf32=False))[0]


@pytest.mark.parametrize("plan,bar", [
    (RuntimePlan("fp16"), 35), (RuntimePlan("bf16"), 35), (RuntimePlan("int8"), 28),
    (RuntimePlan("int8", keep_modulation=True), 28), (RuntimePlan("fp16", "model"), 35),
    (RuntimePlan("fp16", "stream"), 35), (RuntimePlan("fp16", "sequential"), 35),
    (RuntimePlan("fp32", "stream"), 80), (RuntimePlan("fp32", "model"), 80)], ids=lambda v: getattr(v, "label", ""))
def test_each_plan_stays_close_to_the_fp32_reference(reference, plan, bar):
    if plan.precision == "int8":
        pytest.importorskip("bitsandbytes")
    if plan.offload == "sequential":
        pytest.importorskip("accelerate")
    out, backend = _recover(plan)
    psnr = _psnr(out, reference)
    assert psnr >= bar, (plan.label, psnr)
    if plan.precision == "int8":
        import bitsandbytes as bnb

        linear = backend.models.transformer.transformer_blocks[0].ff.net[2]
        assert isinstance(linear, bnb.nn.Linear8bitLt) and linear.weight.dtype == torch.int8


def test_streaming_keeps_the_blocks_off_the_gpu_between_forwards(reference):
    out, backend = _recover(RuntimePlan("fp16", "stream"))
    blocks = backend.models.transformer.transformer_blocks
    assert all(b.attn1.to_q.weight.is_meta for b in blocks)
    assert backend.models.transformer.proj_out_2.weight.device.type == "cuda"


@pytest.mark.parametrize("plan,bar", [
    (RuntimePlan("fp8"), 35), (RuntimePlan("fp8", "model"), 35), (RuntimePlan("fp8", "stream"), 35),
    (RuntimePlan("nf4"), 20), (RuntimePlan("fp8-compute"), 30), (RuntimePlan("fp16", compile=True), 35),
    (RuntimePlan("fp32", tf32=False), 40)],
    ids=lambda v: getattr(v, "label", ""))
def test_throughput_plans_stay_close_to_the_reference(reference, plan, bar):
    """#15's plans on CUDA: fp8 storage (diffusers' layerwise casting, also streamed in its stored precision), NF4
    (bitsandbytes), torch.compile with CUDA graphs, and strict fp32 against the TF32 default."""
    if plan.precision == "nf4":
        pytest.importorskip("bitsandbytes")
    if plan.precision == "fp8-compute" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 matmuls need compute capability 8.9+")
    out, backend = _recover(plan)
    psnr = _psnr(out, reference)
    assert psnr >= bar, (plan.label, psnr)
    if plan.precision in ("fp8", "nf4", "fp8-compute"):
        assert backend.runtime.quantized_layers > 0


def test_compile_with_cuda_graphs_survives_block_to_block_and_step_to_step(reference):
    """The whole DiT compiled once with CUDA graphs: whole recoveries at two batch sizes (the last batch smaller),
    equal to the same plan in eager mode; per-block compilation crashed at the second block
    (pytorch/pytorch#152887)."""
    from diver_lite.core.recovery import recover_batch
    from diver_lite.core.schedule import build_schedule
    from diver_lite.experiments.fashion_mnist import data as fm
    from diver_lite.core.prepare import from_unit
    from diver_lite.pipeline.engine import EngineSpec, build_engine

    raw, labels, _ = fm.load("test")
    x, y = from_unit(fm.to_images(raw[:6]), "imagenet"), labels[:6]
    outs = {}
    for compiled in (False, True):
        backend = build_engine(EngineSpec(device="cuda", plan=RuntimePlan("bf16", compile=compiled)))
        schedule = build_schedule(CONFIG, backend.schedule)
        outs[compiled] = np.concatenate([recover_batch(backend, x[i], y[i], i, CONFIG, schedule, "imagenet")
                                         for i in ([0, 1, 2, 3], [4, 5], [0, 1, 2, 3])])
    assert _psnr(outs[True], outs[False]) >= 40


def test_batch_size_auto_fills_a_budget_on_the_gpu(tmp_path):
    from diver_lite.pipeline.engine import EngineSpec, build_engine

    backend = build_engine(EngineSpec(device="cuda", budget_gb=1.0, auto_batch=True), max_batch=4096)
    assert backend.batch_size > 8
    assert torch.backends.cuda.matmul.allow_tf32 == (backend.runtime.plan.tf32)
