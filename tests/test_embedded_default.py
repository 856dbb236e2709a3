"""The embedded default prior (real weights, trained on Fashion-MNIST): it loads with no --model, recovers, behaves
as a trained denoiser should, and ONNX Runtime reproduces it."""

import numpy as np
import pytest
from click.testing import CliRunner

from diver_lite.models.source import EMBEDDED_DEFAULT

pytestmark = pytest.mark.skipif(not (EMBEDDED_DEFAULT / "transformer").is_dir(),
                                reason="the embedded default is not installed")


@pytest.fixture(scope="module")
def default_backend():
    from diver_lite.backends.torch_backend import TorchBackend
    from diver_lite.models.load import load_models

    return TorchBackend(load_models(None, device="cpu"))


@pytest.fixture(scope="module")
def real_images():
    from diver_lite.experiments.fashion_mnist import data as fm
    from diver_lite.core.prepare import from_unit

    images, labels, _ = fm.load("test")
    picks = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    return from_unit(fm.to_images(images[picks]), "imagenet"), labels[picks]


def _run(backend, x, y, config):
    from diver_lite.core.recovery import recover_batch
    from diver_lite.core.schedule import build_schedule

    schedule = build_schedule(config, backend.schedule)
    return recover_batch(backend, x, y, list(range(len(x))), config, schedule, "imagenet")


def psnr(a, b):
    """The package's PSNR (core/metrics.py) of ImageNet-normalised images, in [0, 1] pixels."""
    from diver_lite.core.metrics import psnr as pixel_psnr
    from diver_lite.core.prepare import to_unit

    return float(pixel_psnr(np.clip(to_unit(a, "imagenet"), 0, 1), np.clip(to_unit(b, "imagenet"), 0, 1)))


def test_recover_uses_the_embedded_default_without_model(tmp_path):
    from diver_lite.cli.main import cli

    result = CliRunner().invoke(cli, ["recover", "examples/demo_dm_ipc1.pt", "-o", str(tmp_path / "o"), "-q"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "default_prior" in (tmp_path / "o" / "report.md").read_text()


def test_a_trained_prior_keeps_real_images_and_repairs_more_with_more_noise(default_backend, real_images):
    """Recovering real images barely changes them at t_init 2 and changes them more at t_init 30; guidance pulls
    the result back toward the input."""
    from diver_lite.core.config import RecoverConfig

    x, y = real_images
    near = psnr(_run(default_backend, x, y, RecoverConfig(t_init=2, steps=3)), x)
    far = psnr(_run(default_backend, x, y, RecoverConfig(t_init=30, steps=31, guidance_scale=0.0)), x)
    guided = psnr(_run(default_backend, x, y, RecoverConfig(t_init=30, steps=31, guidance_scale=1.0)), x)
    assert near > 20 and near > far + 3, (near, far)
    assert guided > far, (guided, far)


PARITY = {"t_init": 20, "steps": 20}


@pytest.fixture(scope="module")
def predd_reference(real_images):
    """The embedded prior's fp32 engine recovering the real images with PReDD's DM IPC 1 settings: the reference of
    every lower-precision plan below (made once)."""
    from diver_lite.core.config import RecoverConfig
    from diver_lite.pipeline.engine import EngineSpec, build_engine

    return _run(build_engine(EngineSpec(device="cpu")), *real_images, RecoverConfig.from_preset("dm", 1, "predd"))


@pytest.fixture(scope="module")
def torch_reference(default_backend, real_images):
    """The embedded prior's fp32 torch recovery that every ONNX Runtime precision is compared with (made once)."""
    from diver_lite.core.config import RecoverConfig

    return _run(default_backend, *real_images, RecoverConfig(**PARITY))


@pytest.mark.parametrize("precision, min_psnr", [("fp32", 40.0), ("int8", 28.0)])
def test_onnxruntime_matches_torch_on_the_embedded_default(tmp_path, default_backend, real_images, torch_reference,
                                                           precision, min_psnr):
    pytest.importorskip("onnxruntime")
    from diver_lite.core.config import RecoverConfig
    from diver_lite.export.onnx import export_models
    from diver_lite.backends.ort import OrtBackend

    export_models(default_backend.models, tmp_path, precision, graphs=("dit", "vae_encoder", "vae_decoder"))
    ours = _run(OrtBackend(tmp_path, device="cpu"), *real_images, RecoverConfig(**PARITY))
    assert psnr(ours, torch_reference) >= min_psnr, psnr(ours, torch_reference)


def test_bf16_stays_close_to_fp32(tmp_path, real_images, predd_reference):
    """Issue #4's fidelity bar for bf16 (>= 35 dB), on real weights; fp16 is refused on the CPU."""
    from diver_lite.core.config import RecoverConfig
    from diver_lite.errors import ConfigError
    from diver_lite.pipeline.engine import EngineSpec, build_engine

    x, y = real_images
    config = RecoverConfig.from_preset("dm", 1, "predd")
    bf16 = build_engine(EngineSpec(device="cpu", precision="bf16"))
    assert bf16.describe()["dtype"] == "bfloat16"
    assert psnr(_run(bf16, x, y, config), predd_reference) >= 35
    with pytest.raises(ConfigError, match="bf16"):
        build_engine(EngineSpec(device="cpu", precision="fp16"))


@pytest.mark.parametrize("plan", ["fp8", "fp8+offload-model", "fp8+keep-modulation"])
def test_fp8_storage_stays_close_to_fp32_and_holds_a_byte_per_weight(real_images, predd_reference, plan):
    """#15's bar for fp8 storage (>= 35 dB PSNR against fp32, embedded default); the block linears are float8."""
    import torch

    from diver_lite.core.config import RecoverConfig
    from diver_lite.memory.plan import RuntimePlan
    from diver_lite.pipeline.engine import EngineSpec, build_engine

    x, y = real_images
    config = RecoverConfig.from_preset("dm", 1, "predd")
    fp8 = build_engine(EngineSpec(device="cpu", plan=RuntimePlan.parse(plan)))
    block = fp8.models.transformer.transformer_blocks[0]
    assert block.ff.net[2].weight.dtype == torch.float8_e4m3fn
    assert block.norm1.linear.weight.dtype == (torch.bfloat16 if "keep" in plan else torch.float8_e4m3fn)
    assert fp8.describe()["quantized_layers"] > 0 and fp8.denoiser.fallback is None
    fidelity = psnr(_run(fp8, x, y, config), predd_reference)
    assert fidelity >= 35, fidelity
