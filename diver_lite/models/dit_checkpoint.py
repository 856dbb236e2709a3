"""The original DiT checkpoint (facebookresearch/DiT, e.g. DiT-XL-2-256x256.pt, a plain state dict) <-> the
diffusers DiTTransformer2DModel layout, in memory. Follows diffusers' scripts/convert_dit_to_diffusers.py."""

import math

import torch

# DiT's named sizes: hidden size -> attention heads (S: 384/6, B: 768/12, L: 1024/16, XL: 1152/16).
HEADS_BY_HIDDEN = {384: 6, 768: 12, 1024: 16, 1152: 16}


def dit_config_from_state_dict(sd: dict[str, torch.Tensor], num_heads: int | None = None) -> dict:
    """The DiTTransformer2DModel config that an original DiT state dict needs, read off its shapes."""
    proj = sd["x_embedder.proj.weight"]                      # [D, C_in, p, p]
    hidden, in_channels, patch = proj.shape[0], proj.shape[1], proj.shape[2]
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    tokens = sd["pos_embed"].shape[1] if "pos_embed" in sd else None
    out_channels = sd["final_layer.linear.weight"].shape[0] // (patch * patch)
    heads = num_heads or HEADS_BY_HIDDEN.get(hidden)
    if heads is None:
        raise KeyError(f"hidden size {hidden} is not a named DiT size; pass num_heads")
    if tokens is None:
        raise KeyError("pos_embed is missing, so the input size is unknown")
    return {
        "num_attention_heads": heads,
        "attention_head_dim": hidden // heads,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "num_layers": depth,
        "sample_size": int(math.isqrt(tokens)) * patch,
        "patch_size": patch,
        "num_embeds_ada_norm": sd["y_embedder.embedding_table.weight"].shape[0] - 1,  # the last row is null
    }


def original_to_diffusers(sd: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Map keys (and split the fused qkv). The shared timestep/class embedders are copied into every block, as
    diffusers expects; `models.tie_embedders` shares them again after loading. pos_embed is dropped: diffusers
    recomputes the same fixed sin-cos table."""
    sd = dict(sd)
    out = {
        "pos_embed.proj.weight": sd.pop("x_embedder.proj.weight"),
        "pos_embed.proj.bias": sd.pop("x_embedder.proj.bias"),
        "proj_out_1.weight": sd.pop("final_layer.adaLN_modulation.1.weight"),
        "proj_out_1.bias": sd.pop("final_layer.adaLN_modulation.1.bias"),
        "proj_out_2.weight": sd.pop("final_layer.linear.weight"),
        "proj_out_2.bias": sd.pop("final_layer.linear.bias"),
    }
    emb = {
        "timestep_embedder.linear_1.weight": sd.pop("t_embedder.mlp.0.weight"),
        "timestep_embedder.linear_1.bias": sd.pop("t_embedder.mlp.0.bias"),
        "timestep_embedder.linear_2.weight": sd.pop("t_embedder.mlp.2.weight"),
        "timestep_embedder.linear_2.bias": sd.pop("t_embedder.mlp.2.bias"),
        "class_embedder.embedding_table.weight": sd.pop("y_embedder.embedding_table.weight"),
    }
    sd.pop("pos_embed", None)
    for d in range(depth):
        b, o = f"blocks.{d}.", f"transformer_blocks.{d}."
        for k, v in emb.items():
            out[o + "norm1.emb." + k] = v
        out[o + "norm1.linear.weight"] = sd.pop(b + "adaLN_modulation.1.weight")
        out[o + "norm1.linear.bias"] = sd.pop(b + "adaLN_modulation.1.bias")
        q, k, v = sd.pop(b + "attn.qkv.weight").chunk(3, dim=0)
        qb, kb, vb = sd.pop(b + "attn.qkv.bias").chunk(3, dim=0)
        out.update({o + "attn1.to_q.weight": q, o + "attn1.to_k.weight": k, o + "attn1.to_v.weight": v,
                    o + "attn1.to_q.bias": qb, o + "attn1.to_k.bias": kb, o + "attn1.to_v.bias": vb})
        out[o + "attn1.to_out.0.weight"] = sd.pop(b + "attn.proj.weight")
        out[o + "attn1.to_out.0.bias"] = sd.pop(b + "attn.proj.bias")
        out[o + "ff.net.0.proj.weight"] = sd.pop(b + "mlp.fc1.weight")
        out[o + "ff.net.0.proj.bias"] = sd.pop(b + "mlp.fc1.bias")
        out[o + "ff.net.2.weight"] = sd.pop(b + "mlp.fc2.weight")
        out[o + "ff.net.2.bias"] = sd.pop(b + "mlp.fc2.bias")
    if sd:
        raise KeyError(f"unexpected keys in the DiT checkpoint: {sorted(sd)[:5]}")
    return out


def diffusers_to_original(sd: dict[str, torch.Tensor], depth: int, pos_embed: torch.Tensor) -> dict:
    """The inverse map (block 0's embedders stand for the shared ones): writes a checkpoint the original DiT code
    loads, and lets the tests prove the forward map by a round trip."""
    e = "transformer_blocks.0.norm1.emb."
    out = {
        "x_embedder.proj.weight": sd["pos_embed.proj.weight"], "x_embedder.proj.bias": sd["pos_embed.proj.bias"],
        "pos_embed": pos_embed,
        "t_embedder.mlp.0.weight": sd[e + "timestep_embedder.linear_1.weight"],
        "t_embedder.mlp.0.bias": sd[e + "timestep_embedder.linear_1.bias"],
        "t_embedder.mlp.2.weight": sd[e + "timestep_embedder.linear_2.weight"],
        "t_embedder.mlp.2.bias": sd[e + "timestep_embedder.linear_2.bias"],
        "y_embedder.embedding_table.weight": sd[e + "class_embedder.embedding_table.weight"],
        "final_layer.adaLN_modulation.1.weight": sd["proj_out_1.weight"],
        "final_layer.adaLN_modulation.1.bias": sd["proj_out_1.bias"],
        "final_layer.linear.weight": sd["proj_out_2.weight"], "final_layer.linear.bias": sd["proj_out_2.bias"],
    }
    for d in range(depth):
        b, o = f"blocks.{d}.", f"transformer_blocks.{d}."
        out[b + "adaLN_modulation.1.weight"] = sd[o + "norm1.linear.weight"]
        out[b + "adaLN_modulation.1.bias"] = sd[o + "norm1.linear.bias"]
        out[b + "attn.qkv.weight"] = torch.cat([sd[o + f"attn1.to_{n}.weight"] for n in "qkv"])
        out[b + "attn.qkv.bias"] = torch.cat([sd[o + f"attn1.to_{n}.bias"] for n in "qkv"])
        out[b + "attn.proj.weight"] = sd[o + "attn1.to_out.0.weight"]
        out[b + "attn.proj.bias"] = sd[o + "attn1.to_out.0.bias"]
        out[b + "mlp.fc1.weight"] = sd[o + "ff.net.0.proj.weight"]
        out[b + "mlp.fc1.bias"] = sd[o + "ff.net.0.proj.bias"]
        out[b + "mlp.fc2.weight"] = sd[o + "ff.net.2.weight"]
        out[b + "mlp.fc2.bias"] = sd[o + "ff.net.2.bias"]
    return {k: v.clone() for k, v in out.items()}
