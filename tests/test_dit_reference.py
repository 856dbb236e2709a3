"""Meta's DiT weights must run the network Meta's DiT computes. An independent forward pass of the original DiT
(Peebles & Xie 2023, facebookresearch/DiT models.py), written here from the paper's equations, is the reference for
every path that loads such weights: the original .pt, a diffusers folder laid out as facebook/DiT-XL-2-*, the
memory runtime's lazy loading, and the exported dit.onnx."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diver_lite.models.dit_checkpoint import diffusers_to_original
from diver_lite.models.tiny import build_tiny_models
from diver_lite.models.load import load_models
from diver_lite.models.save import save_models

HEADS = 2


def sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
    out = np.outer(pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def pos_embed_2d(dim: int, grid: int) -> torch.Tensor:
    """DiT's fixed 2-D sin-cos table: half the channels encode the row, half the column."""
    w, h = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64))
    return torch.from_numpy(np.concatenate([sincos_1d(dim // 2, w), sincos_1d(dim // 2, h)], axis=1)).float()


def timestep_embedding(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """DiT's TimestepEmbedder frequencies: exp(-ln(1e4) k / (dim/2)), cos then sin."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def dit_forward(sd: dict, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, heads: int = HEADS) -> torch.Tensor:
    """The original DiT's forward from its state dict. x [N, C, H, W] latent, t [N], y [N] -> [N, C_out, H, W]."""
    w = sd["x_embedder.proj.weight"]
    D, p = w.shape[0], w.shape[2]
    N, _, H, W = x.shape
    h = F.conv2d(x, w, sd["x_embedder.proj.bias"], stride=p).flatten(2).transpose(1, 2)   # [N, T, D]
    h = h + pos_embed_2d(D, H // p)[None]
    temb = timestep_embedding(t)
    temb = F.linear(F.silu(F.linear(temb, sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])),
                    sd["t_embedder.mlp.2.weight"], sd["t_embedder.mlp.2.bias"])         # [N, D]
    c = temb + sd["y_embedder.embedding_table.weight"][y]                                # [N, D]
    modulate = lambda v, shift, scale: v * (1 + scale[:, None]) + shift[:, None]  # noqa: E731
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    for d in range(depth):
        b = f"blocks.{d}."
        mod = F.linear(F.silu(c), sd[b + "adaLN_modulation.1.weight"], sd[b + "adaLN_modulation.1.bias"])
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=1)
        a = modulate(F.layer_norm(h, (D,), eps=1e-6), shift_msa, scale_msa)
        qkv = F.linear(a, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"])            # [N, T, 3D]
        q, k, v = qkv.reshape(N, -1, 3, heads, D // heads).permute(2, 0, 3, 1, 4)        # [N, heads, T, d]
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // heads), dim=-1) @ v
        att = F.linear(att.transpose(1, 2).reshape(N, -1, D), sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        h = h + gate_msa[:, None] * att
        m = modulate(F.layer_norm(h, (D,), eps=1e-6), shift_mlp, scale_mlp)
        m = F.linear(F.gelu(F.linear(m, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"]), approximate="tanh"),
                     sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
        h = h + gate_mlp[:, None] * m
    shift, scale = F.linear(F.silu(c), sd["final_layer.adaLN_modulation.1.weight"],
                            sd["final_layer.adaLN_modulation.1.bias"]).chunk(2, dim=1)
    h = F.linear(modulate(F.layer_norm(h, (D,), eps=1e-6), shift, scale), sd["final_layer.linear.weight"],
                 sd["final_layer.linear.bias"])                                           # [N, T, p*p*C_out]
    g = H // p
    c_out = h.shape[-1] // (p * p)
    h = h.reshape(N, g, g, p, p, c_out)
    return torch.einsum("nhwpqc->nchpwq", h).reshape(N, c_out, g * p, g * p)


@pytest.fixture(scope="module")
def meta_like(tmp_path_factory):
    """A tiny DiT with every weight random (adaLN included), saved as an original checkpoint and as a diffusers
    folder laid out as facebook/DiT-XL-2-* (no convention recorded)."""
    folder = tmp_path_factory.mktemp("meta-like")
    models = build_tiny_models(seed=3)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in models.transformer.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.15)
    from diver_lite.models.tying import equalize_embedders
    equalize_embedders(models.transformer)
    t = models.transformer
    sd = diffusers_to_original(t.state_dict(), len(t.transformer_blocks), t.pos_embed.pos_embed)
    torch.save(sd, folder / "DiT-tiny.pt")
    save_models(models, folder / "hub")
    cfg_file = folder / "hub" / "transformer" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.pop("timestep_embedding")                     # Meta's converted folders record nothing
    cfg_file.write_text(json.dumps(cfg))
    return folder, sd


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(3, 4, 4, 4, generator=g), torch.tensor([0, 408, 999]), torch.tensor([5, 17, 1000]))


def out_of(models) -> torch.Tensor:
    x, t, y = inputs()
    with torch.no_grad():
        return models.transformer(x, timestep=t, class_labels=y).sample


def test_reference_is_independent_of_diffusers_pos_table(meta_like):
    """The checkpoint's own pos_embed (diffusers' table) equals the one written here from DiT's equations."""
    _, sd = meta_like
    torch.testing.assert_close(sd["pos_embed"][0].float(), pos_embed_2d(16, 2), atol=1e-6, rtol=0)


def test_original_checkpoint_runs_metas_network(meta_like, tiny_model_dir):
    folder, sd = meta_like
    models = load_models(folder / "DiT-tiny.pt", vae=tiny_model_dir / "vae", num_heads=HEADS)
    assert models.timestep_embedding == "dit" and models.describe()["timestep_embedding"] == "dit"
    ref = dit_forward(sd, *inputs())
    assert (out_of(models) - ref).abs().max() <= 1e-4
    # diffusers' frequencies (/127) give another network: the difference the fix removes.
    wrong = load_models(folder / "DiT-tiny.pt", vae=tiny_model_dir / "vae", num_heads=HEADS,
                        timestep_embedding="diffusers")
    assert (out_of(wrong) - ref).abs().max() > 1e-2


def test_hub_layout_folder_and_lazy_runtime_run_metas_network(meta_like):
    from diver_lite.memory.runtime import build_runtime
    from diver_lite.models.open import open_models
    from diver_lite.memory.plan import RuntimePlan

    folder, sd = meta_like
    ref = dit_forward(sd, *inputs())
    models = load_models(folder / "hub")
    assert models.timestep_embedding == "dit"
    assert (out_of(models) - ref).abs().max() <= 1e-4
    for plan in (RuntimePlan("fp32"), RuntimePlan("fp32", "stream")):      # weightless build, filled from the file
        runtime = build_runtime(open_models(folder / "hub"), torch.device("cpu"), plan)
        assert runtime.models.timestep_embedding == "dit", plan
        runtime.placement.activate("transformer")
        assert (out_of(runtime.models) - ref).abs().max() <= 1e-4, plan


def test_models_trained_by_the_project_record_diffusers_convention(tmp_path, tiny_model_dir):
    from diver_lite.models.source import EMBEDDED_DEFAULT

    assert json.loads((tiny_model_dir / "transformer" / "config.json").read_text())["timestep_embedding"] == \
        "diffusers"
    assert load_models(tiny_model_dir).timestep_embedding == "diffusers"
    assert load_models(None).timestep_embedding == "diffusers"          # the embedded prior
    assert json.loads((EMBEDDED_DEFAULT / "transformer" / "config.json").read_text())["timestep_embedding"] == \
        "diffusers"
    assert load_models(tiny_model_dir, timestep_embedding="dit").timestep_embedding == "dit"   # the override


def test_exported_dit_graph_computes_metas_network(meta_like, tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from diver_lite.export.onnx import export_models

    folder, sd = meta_like
    models = load_models(folder / "DiT-tiny.pt", vae=tiny_model_dir / "vae", num_heads=HEADS)
    manifest = export_models(models, tmp_path, "fp32", graphs=("dit",))
    assert manifest["timestep_embedding"] == "dit"
    session = ort.InferenceSession(str(tmp_path / "dit.onnx"), providers=["CPUExecutionProvider"])
    x, t, y = inputs()
    names = [i.name for i in session.get_inputs()]
    out = session.run(None, dict(zip(names, [x.numpy(), t.numpy().astype(np.int64), y.numpy().astype(np.int64)])))
    ref = dit_forward(sd, x, t, y).numpy()
    assert np.abs(out[0] - ref).max() <= 1e-4, (np.abs(out[0] - ref).max(), np.abs(ref).max())


def test_report_names_the_convention(tmp_path, dm_file, tiny_model_dir):
    from diver_lite.core.config import RecoverConfig
    from diver_lite.pipeline.run import recover
    report = recover(dm_file, tmp_path / "out", RecoverConfig(t_init=2, steps=3), model=tiny_model_dir,
                     device="cpu", write_pngs=False)
    assert report["model"]["timestep_embedding"] == "diffusers"
    assert json.loads((tmp_path / "out" / "report.json").read_text())["model"]["timestep_embedding"] == "diffusers"
