"""The peak-memory estimate of a runtime plan, made before any weight is read: parameter counts from the configs
(on a weightless model), where each tactic keeps them, and an activation model calibrated on DiT-XL/2 + sd-vae
(docs/benchmarks/memory.md). On the CPU it estimates the process's peak RSS, on CUDA torch's peak allocated memory."""

from dataclasses import dataclass

from diver_lite.memory.plan import BYTES, TACTICS
from diver_lite.memory.tactic import Estimate

DIT_ACTIVATION_FACTOR = 14      # live [tokens x hidden] tensors at a block's peak (qkv, MLP x4, residuals)
VAE_ACTIVATION_FACTOR = 12      # live [width x image²] tensors at the VAE's full-resolution peak
CPU_OVERHEAD = 1.10             # allocator slack on the CPU


@dataclass
class ModelSizes:
    """Parameter counts by where they live (embedders tied), and the shapes the activation model needs."""
    dit_blocks: int
    block_params: int            # one block, without the shared embedder
    block_int8_params: int       # of those, in layers that int8 quantizes (adaLN included)
    block_modulation_params: int
    dit_resident_params: int     # patch embedding, shared embedder, final layer
    vae_encoder_params: int
    vae_decoder_params: int
    tokens: int                  # DiT tokens per image
    hidden: int
    heads: int
    image_size: int
    vae_width: int               # channels of the VAE's full-resolution blocks
    num_classes: int = 1000


def model_sizes(transformer, vae) -> ModelSizes:
    """Counted on (possibly weightless) modules."""
    from diver_lite.memory.quantize import MODULATION, int8_targets

    blocks = transformer.transformer_blocks
    block = blocks[0]
    shared = {id(p) for p in block.norm1.emb.parameters()} if block.norm1.emb is not None else set()
    tied = len(blocks) > 1 and blocks[1].norm1.emb is block.norm1.emb
    count = lambda ps: sum(p.numel() for p in ps)  # noqa: E731
    block_params = count(p for p in block.parameters() if not (tied and id(p) in shared))
    int8_names = {n.split(".", 2)[2] for n in int8_targets(transformer) if n.startswith("transformer_blocks.0.")}
    block_int8 = count(block.get_submodule(n).weight for n in int8_names)
    modulation = count(block.get_submodule(n).weight for n in int8_names if MODULATION in n)
    total = count(transformer.parameters())
    cfg = transformer.config
    enc = count(vae.encoder.parameters()) + count(vae.quant_conv.parameters())
    dec = count(vae.decoder.parameters()) + count(vae.post_quant_conv.parameters())
    return ModelSizes(len(blocks), block_params, block_int8, modulation, total - len(blocks) * block_params, enc,
                      dec, (cfg.sample_size // cfg.patch_size) ** 2, cfg.num_attention_heads * cfg.attention_head_dim,
                      cfg.num_attention_heads, cfg.sample_size * 2 ** (len(vae.config.block_out_channels) - 1),
                      vae.config.block_out_channels[0], int(cfg.num_embeds_ada_norm))


def estimate_peak_bytes(plan, sizes: ModelSizes, batch: int, device_type: str, runtime_bytes: int = 0) -> dict:
    """{'total', 'weights', 'activations', 'runtime'} bytes for one batch of `batch` images (CFG doubles the DiT
    batch). device_type 'cuda': device memory; 'cpu': the process RSS, `runtime_bytes` being its RSS now."""
    s = sizes
    b, bv = BYTES[plan.compute_dtype(device_type)], BYTES[plan.vae_dtype(device_type)]
    e = Estimate(dit_bytes=b, vae_bytes=bv, block=s.block_params * b, resident=s.dit_resident_params * b,
                 encoder=s.vae_encoder_params * bv, decoder=s.vae_decoder_params * bv,
                 dit_activations=DIT_ACTIVATION_FACTOR * 2 * batch * s.tokens * s.hidden * b,
                 vae_images=batch, vae_pixels=s.image_size ** 2)
    for tactic in TACTICS:
        tactic.estimate(e, plan, s, device_type, batch)
    dit_w = e.dit_weights if e.dit_weights is not None else e.resident + s.dit_blocks * e.block
    vae_w = e.vae_weights if e.vae_weights is not None else e.encoder + e.decoder
    dit_act = e.dit_activations
    vae_act = VAE_ACTIVATION_FACTOR * e.vae_images * s.vae_width * e.vae_pixels * e.vae_bytes
    if device_type == "cuda":
        if not e.separate_on_device:
            weights, activations = dit_w + vae_w, max(dit_act, vae_act)
        else:
            weights = max(dit_w, vae_w)
            activations = dit_act if dit_w + dit_act >= vae_w + vae_act else vae_act
        total = weights + activations
    else:   # on the CPU a resident DiT stays while the VAE runs
        weights, activations = dit_w + vae_w, max(dit_act, vae_act)
        total = int(runtime_bytes + (weights + activations) * CPU_OVERHEAD)
    return {"total": int(total), "weights": int(weights), "activations": int(activations),
            "runtime": int(runtime_bytes if device_type == "cpu" else 0)}
