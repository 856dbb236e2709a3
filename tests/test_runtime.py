"""The memory runtime on the CPU: every plan recovers what the fp32 reference does (offloading exactly, reduced
precision closely), weights really leave memory when offloaded, estimates match measured peaks, budgets choose a
plan, and CUDA-only paths refuse clearly."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from diver_lite.core.config import RecoverConfig
from diver_lite.errors import ConfigError
from diver_lite.memory.plan import RuntimePlan

from conftest import assert_one_line_error, make_images

CONFIG = RecoverConfig(t_init=4, steps=5, batch_size=3)


def _recover(backend, images, labels):
    from diver_lite.core.recovery import recover_batch
    from diver_lite.core.schedule import build_schedule

    return recover_batch(backend, images, labels, list(range(len(images))), CONFIG,
                         build_schedule(CONFIG, backend.schedule), "imagenet")


def _backend(model, plan):
    from diver_lite.pipeline.engine import EngineSpec, build_engine

    return build_engine(EngineSpec(model=model, device="cpu", plan=plan))


@pytest.fixture(scope="module")
def images():
    return make_images(3, seed=4), np.array([1, 5, 9])


@pytest.fixture(scope="module")
def reference(tiny_model_dir, images):
    return _recover(_backend(str(tiny_model_dir), RuntimePlan()), *images)


@pytest.mark.parametrize("plan,atol", [(RuntimePlan("fp32", "model"), 0), (RuntimePlan("fp32", "stream"), 0),
                                       (RuntimePlan("fp32", vae_slicing=True), 1e-4)], ids=["model", "stream", "vae"])
def test_offloading_changes_where_weights_wait_not_the_result(tiny_model_dir, images, reference, plan, atol):
    """Offloading is exact; VAE slicing runs other batch shapes, so BLAS may round differently (~1e-5)."""
    out = _recover(_backend(str(tiny_model_dir), plan), *images)
    np.testing.assert_allclose(out, reference, atol=atol, rtol=0)


def test_lazy_loading_matches_the_whole_model_loader(tiny_model_dir, images, reference):
    """The safetensors folder is read tensor by tensor; the classic loader (load_models) gives the same set."""
    from diver_lite.models.load import load_models

    whole = _recover(_backend(load_models(str(tiny_model_dir)), RuntimePlan()), *images)
    np.testing.assert_array_equal(whole, reference)


def test_streamed_blocks_leave_memory_after_their_forward(tiny_model_dir, images):
    backend = _backend(str(tiny_model_dir), RuntimePlan("bf16", "stream"))
    blocks = backend.models.transformer.transformer_blocks
    seen = []
    blocks[1].attn1.register_forward_hook(lambda m, a, o: seen.append(m.to_q.weight.is_meta))
    _recover(backend, *images)
    assert seen and not any(seen)                           # real weights while running
    assert blocks[0].attn1.to_q.weight.is_meta and blocks[1].ff.net[2].weight.is_meta   # gone afterwards
    assert not blocks[1].norm1.emb.class_embedder.embedding_table.weight.is_meta   # the tied embedder stays
    assert backend.models.vae.encoder.conv_in.weight.is_meta   # the VAE waits on disk too


def test_reduced_precision_plans_stay_close_on_the_embedded_default():
    """Fidelity on real weights (the issue's bars: bf16 >= 35 dB, int8 >= 28 dB against fp32)."""
    from diver_lite.experiments.fashion_mnist import data as fm
    from diver_lite.core.prepare import from_unit, to_unit

    pytest.importorskip("torchao")
    raw, labels, _ = fm.load("test")
    x, y = from_unit(fm.to_images(raw[:6]), "imagenet"), labels[:6]
    ref = to_unit(_recover(_backend(None, RuntimePlan()), x, y), "imagenet")
    for plan, bar in ((RuntimePlan("bf16", "stream"), 35), (RuntimePlan("int8"), 28),
                      (RuntimePlan("int8", "model", keep_modulation=True), 28)):
        out = to_unit(_recover(_backend(None, plan), x, y), "imagenet")
        psnr = 10 * np.log10(1 / np.mean((out - ref) ** 2))
        assert psnr >= bar, (plan.label, psnr)


def test_int8_quantizes_the_block_linears_and_can_spare_the_modulation(tiny_model_dir):
    pytest.importorskip("torchao")
    from diver_lite.memory.quantize import int8_targets

    plain = _backend(str(tiny_model_dir), RuntimePlan("int8"))
    kept = _backend(str(tiny_model_dir), RuntimePlan("int8", keep_modulation=True))
    t = plain.models.transformer
    names = int8_targets(t)
    assert plain.runtime.int8_layers == len(names) > 0
    assert any("norm1.linear" in n for n in names) and not any("norm1.emb" in n or "proj_out" in n for n in names)
    assert kept.runtime.int8_layers == len(names) - len(t.transformer_blocks)
    # The block linears hold torchao's int8 tensors (an unquantized fp32 or bf16 weight is a plain Parameter).
    assert type(t.transformer_blocks[0].ff.net[2].weight).__module__.startswith("torchao")
    assert type(kept.models.transformer.transformer_blocks[0].norm1.linear.weight).__module__ == "torch.nn.parameter"
    assert plain.describe()["plan"]["label"] == "int8"


def test_a_16_bit_overflow_is_rerun_in_fp32_with_a_warning(tiny_model_dir, images):
    backend = _backend(str(tiny_model_dir), RuntimePlan("bf16"))
    t = backend.models.transformer
    handle = t.proj_out_2.register_forward_hook(
        lambda m, a, o: o * float("inf") if o.dtype == torch.bfloat16 else o)
    with pytest.warns(RuntimeWarning, match="re-running in torch.float32"):
        out = _recover(backend, *images)
    handle.remove()
    assert np.isfinite(out).all() and backend.denoiser.dtype == torch.float32


def test_an_overflow_without_a_fallback_is_a_clear_error(tiny_model_dir, images):
    from diver_lite.errors import ModelError

    backend = _backend(str(tiny_model_dir), RuntimePlan("bf16", "stream"))
    backend.models.transformer.proj_out_2.register_forward_hook(lambda m, a, o: o * float("inf"))
    with pytest.raises(ModelError, match="non-finite"):
        _recover(backend, *images)


def test_attention_slicing_is_applied_per_module_and_auto_leaves_sdpa_alone(tiny_model_dir, images, reference):
    from diffusers.models.attention_processor import AttnProcessor, SlicedAttnProcessor

    from diver_lite.memory.attention_slicing import attention_modules, set_attention_slice

    backend = _backend(str(tiny_model_dir), RuntimePlan(attention_slice="1"))
    mods = attention_modules(backend.models.transformer, backend.models.vae)
    assert len(mods) == 4 and all(isinstance(m.processor, SlicedAttnProcessor) for m in mods)  # 2 DiT, VAE mids
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(_recover(backend, *images), reference, atol=1e-4)
    fresh = _backend(str(tiny_model_dir), RuntimePlan())
    assert set_attention_slice("auto", fresh.models.transformer) == 0     # SDPA never forms the score matrix
    classic = attention_modules(fresh.models.transformer)[0]
    classic.set_processor(AttnProcessor())
    assert set_attention_slice("auto", fresh.models.transformer) == 1


def test_cuda_only_and_contradictory_plans_are_refused_with_the_fix(tiny_model_dir):
    with pytest.raises(ConfigError, match="needs CUDA"):
        _backend(str(tiny_model_dir), RuntimePlan("fp32", "sequential"))
    with pytest.raises(ConfigError, match="slower"):
        _backend(str(tiny_model_dir), RuntimePlan("fp16"))
    with pytest.raises(ConfigError, match="cannot be combined"):
        RuntimePlan("int8", "stream")
    for bad in ("0", "-2", "half"):
        with pytest.raises(ConfigError, match="--attention-slice"):
            RuntimePlan(attention_slice=bad)
    with pytest.raises(ConfigError, match="safetensors"):
        _backend("tiny-random", RuntimePlan("bf16", "stream"))


def _peak_in_subprocess(model_dir, plan: RuntimePlan) -> tuple[float, float]:
    code = f"""
import json, numpy as np
from diver_lite.core.config import RecoverConfig
from diver_lite.pipeline.engine import EngineSpec, build_engine
from diver_lite.core.recovery import recover_batch
from diver_lite.pipeline.report import current_rss_bytes, peak_rss_mb
from diver_lite.memory.runtime import sizes_of
from diver_lite.models.open import open_models
from diver_lite.memory.plan import RuntimePlan
from diver_lite.memory.estimate import estimate_peak_bytes
from diver_lite.core.schedule import build_schedule
plan = RuntimePlan(**{plan.to_dict()!r})
cfg = RecoverConfig(t_init=2, steps=3, batch_size=4)
est = estimate_peak_bytes(plan, sizes_of(open_models({str(model_dir)!r})), 4, "cpu", current_rss_bytes())
b = build_engine(EngineSpec(model={str(model_dir)!r}, device="cpu", plan=plan))
x = np.zeros((4, 3, 32, 32), np.float32)
recover_batch(b, x, np.arange(4), list(range(4)), cfg, build_schedule(cfg, b.schedule), "imagenet")
print(json.dumps([est["total"] / 2**20, peak_rss_mb()]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("plan", [RuntimePlan(), RuntimePlan("bf16", "stream")], ids=lambda p: p.label)
def test_the_estimate_is_within_20_percent_of_the_measured_peak(tiny_model_dir, plan):
    estimate, peak = _peak_in_subprocess(tiny_model_dir, plan)
    assert abs(estimate / peak - 1) <= 0.20, (estimate, peak)


def test_a_budget_picks_the_fastest_plan_that_fits_and_refuses_when_none_does():
    from diver_lite.memory.budget import CANDIDATES, choose_plan
    from diver_lite.memory.estimate import ModelSizes, estimate_peak_bytes

    xl = ModelSizes(dit_blocks=28, block_params=23_887_872, block_int8_params=23_887_872,
                    block_modulation_params=7_962_624, dit_resident_params=5_000_000, vae_encoder_params=34_000_000,
                    vae_decoder_params=49_000_000, tokens=256, hidden=1152, heads=16, image_size=256, vae_width=128)
    totals = [estimate_peak_bytes(p, xl, 1, "cuda")["total"] for p in CANDIDATES["cuda"]]
    assert totals[0] > totals[1] > totals[-1]                   # fp16 > int8 > ... > sequential
    assert 1.3e9 < totals[0] < 1.9 * 2**30                      # fp16 DiT-XL/2: ~1.35 GB of weights
    plan, est = choose_plan(int(1.2 * 2**30), xl, 1, "cuda")
    assert plan == RuntimePlan("int8") and est["total"] <= 1.2 * 2**30
    plan, _ = choose_plan(int(0.4 * 2**30), xl, 1, "cuda")
    assert plan.offload in ("stream", "sequential")
    with pytest.raises(ConfigError, match="no plan fits"):
        choose_plan(10 * 2**20, xl, 1, "cuda")


def test_recover_cli_prints_the_chosen_plan_and_refuses_mixed_options(tmp_path, dm_file, tiny_model_dir):
    from diver_lite.cli.main import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["recover", str(dm_file), "-o", str(tmp_path / "a"), "--model", str(tiny_model_dir),
                              "--device", "cpu", "--ram-budget", "8", "--t-init", "2", "--steps", "3", "--no-png"])
    assert res.exit_code == 0, res.output
    assert "memory plan for 8 GB: bf16 (estimated peak" in res.output
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["model"]["plan"]["label"] == "bf16" and report["model"]["dtype"] == "bfloat16"
    assert "plan bf16" in (tmp_path / "a" / "report.md").read_text()
    res = runner.invoke(cli, ["recover", str(dm_file), "-o", str(tmp_path / "b"), "--model", str(tiny_model_dir),
                              "--ram-budget", "8", "--precision", "int8"])
    assert_one_line_error(res, 2, "--precision and a memory budget")
    res = runner.invoke(cli, ["recover", str(dm_file), "-o", str(tmp_path / "c"), "--model", str(tiny_model_dir),
                              "--device", "cpu", "--vram-budget", "2"])
    assert_one_line_error(res, 2, "--vram-budget was given but the run is on cpu")
    res = runner.invoke(cli, ["recover", str(dm_file), "-o", str(tmp_path / "d"), "--model", str(tiny_model_dir),
                              "--device", "cpu", "--ram-budget", "0.01"])
    assert_one_line_error(res, 2, "no plan fits")


def test_an_interrupted_run_resumes_under_a_smaller_plan(tmp_path, dm_file, tiny_model_dir):
    """Offloading does not change the numbers, so a run can go on with --offload stream after running short."""
    from diver_lite.cli.main import cli

    runner = CliRunner()
    base = ["recover", str(dm_file), "--model", str(tiny_model_dir), "--device", "cpu", "--t-init", "2",
            "--steps", "3", "--no-png", "--batch-size", "2"]
    assert runner.invoke(cli, base + ["-o", str(tmp_path / "ref")]).exit_code == 0
    # Interrupted after its first batch (2 of 6 images) under the stream plan ...
    from diver_lite.pipeline.run import Interrupted, recover

    with pytest.raises(Interrupted, match="after 2 of 6"):
        # the CLI's settings for a real model: the paper's table with t_init 2, K 3
        recover(dm_file, tmp_path / "r", RecoverConfig.from_preset(None, 1, t_init=2, steps=3, batch_size=2),
                model=str(tiny_model_dir),
                device="cpu", write_pngs=False, plan=RuntimePlan("fp32", "stream"), should_stop=lambda: True)
    assert not (tmp_path / "r" / "dm_set.pt").exists()
    # ... and resumed under the model-offload plan: only the 4 missing images are computed.
    res = runner.invoke(cli, base + ["-o", str(tmp_path / "r"), "--resume", "--offload", "model"])
    assert res.exit_code == 0 and "(4 this run" in res.output, res.output
    res = runner.invoke(cli, base + ["-o", str(tmp_path / "r"), "--resume", "--precision", "bf16"])
    assert_one_line_error(res, 2, "different precision")
    res = runner.invoke(cli, base + ["-o", str(tmp_path / "r"), "--resume", "--vae-tiling"])
    assert_one_line_error(res, 2, "different precision")          # tiling changes the result, slicing does not
    a = torch.load(tmp_path / "ref" / "dm_set.pt", weights_only=True)["data"][0][0]
    b = torch.load(tmp_path / "r" / "dm_set.pt", weights_only=True)["data"][0][0]
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_batch_size_auto_takes_the_largest_batch_the_budget_holds():
    from diver_lite.memory.budget import largest_batch
    from diver_lite.memory.estimate import ModelSizes, estimate_peak_bytes

    xl = ModelSizes(dit_blocks=28, block_params=23_887_872, block_int8_params=23_887_872,
                    block_modulation_params=7_962_624, dit_resident_params=5_000_000, vae_encoder_params=34_000_000,
                    vae_decoder_params=49_000_000, tokens=256, hidden=1152, heads=16, image_size=256, vae_width=128)
    budget = 4 * 2**30
    batch, plan, est = largest_batch(RuntimePlan("fp16"), xl, "cuda", budget, limit=512)
    assert 1 < batch < 512 and est["total"] <= budget
    assert estimate_peak_bytes(plan, xl, batch + 1, "cuda")["total"] > budget       # one more does not fit
    assert plan.vae_slicing      # at 256² the VAE's activations, not the DiT's, bound the batch: slicing fits more
    unsliced = max(b for b in range(1, batch + 1)
                   if estimate_peak_bytes(RuntimePlan("fp16"), xl, b, "cuda")["total"] <= budget)
    assert unsliced < batch
    assert largest_batch(RuntimePlan("fp16"), xl, "cuda", budget, limit=3)[0] == 3   # never beyond the set


def test_recover_with_batch_size_auto_reports_the_batch_it_chose(tmp_path, dm_file, tiny_model_dir):
    from diver_lite.cli.main import cli

    res = CliRunner().invoke(cli, ["recover", str(dm_file), "-o", str(tmp_path / "a"), "--model", str(tiny_model_dir),
                                   "--device", "cpu", "--batch-size", "auto", "--ram-budget", "auto", "--t-init", "2",
                                   "--steps", "3", "--no-png"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    n = report["input"]["images"]
    assert report["config"]["batch_size"] == n and f"batch {n} (estimated peak" in res.output   # the whole set fits
    res = CliRunner().invoke(cli, ["recover", str(dm_file), "-o", str(tmp_path / "b"), "--model", str(tiny_model_dir),
                                   "--batch-size", "many"])
    assert res.exit_code == 2 and "neither a number of images nor auto" in res.output


@pytest.mark.slow   # CPU inductor compile takes minutes; on CUDA: test_runtime_gpu.py and the GPU check
def test_compile_keeps_the_result_within_1e4_and_compiles_the_whole_dit(tiny_model_dir, images, reference):
    """--compile (torch.compile of the DiT blocks; a memory tactic in one file) leaves fp32 results within 1e-4."""
    backend = _backend(str(tiny_model_dir), RuntimePlan("fp32", compile=True))
    compiled = _recover(backend, *images)
    np.testing.assert_allclose(compiled, reference, atol=1e-4)
    # The whole DiT is compiled once, not block by block: per-block CUDA graphs free one block's output under the
    # next (pytorch/pytorch#152887); tests/test_runtime_gpu.py runs the CUDA-graph path.
    dit = backend.models.transformer
    assert dit._compiled_call_impl is not None
    assert all(block._compiled_call_impl is None for block in dit.transformer_blocks)


def test_compile_is_a_plan_part_and_refuses_streaming():
    with pytest.raises(ConfigError, match="--compile cannot be combined with --offload stream"):
        RuntimePlan("bf16", "stream", compile=True)
    assert RuntimePlan.parse("bf16+compile") == RuntimePlan("bf16", compile=True)
