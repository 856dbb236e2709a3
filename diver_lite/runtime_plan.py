"""A runtime plan (precision, offload, attention slicing, VAE slicing/tiling) and its memory estimate.

The estimate is made before any weight is read: parameter bytes per component from the model configs (counted on
a weightless model), where each component's weights are under the plan's offload, and an activation model of the
DiT and VAE forwards. On the CPU it estimates the process's peak RSS (the runtime's own memory, measured when the
estimate is made, plus the above); on CUDA torch's peak allocated memory. `choose_plan` takes the fastest plan
that fits a budget. benchmarks/ check the estimates against measured peaks (docs/BENCHMARKS.md)."""

from dataclasses import asdict, dataclass

from .errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
OFFLOADS = ("none", "model", "sequential", "stream")
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


@dataclass(frozen=True)
class RuntimePlan:
    precision: str = "fp32"          # the DiT's weights
    offload: str = "none"
    attention_slice: str = "off"     # "off", "auto" or a number of head-batches per slice
    vae_precision: str | None = None  # None: the DiT's, or 16 bit under int8 (fp16 on CUDA, bf16 on CPU)
    vae_slicing: bool = False        # decode/encode one image at a time
    vae_tiling: bool = False         # decode/encode in overlapping tiles (large images)
    keep_modulation: bool = False    # int8: keep the adaLN modulation layers in 16 bit

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}", f"use one of {', '.join(PRECISIONS)}")
        if self.vae_precision not in (None, "fp32", "bf16", "fp16"):
            raise ConfigError(f"unknown VAE precision {self.vae_precision!r}", "use fp32, bf16 or fp16")
        if self.offload not in OFFLOADS:
            raise ConfigError(f"unknown offload {self.offload!r}", f"use one of {', '.join(OFFLOADS)}")
        # ASCII digits only: str.isdigit also takes '²' and other digits int() refuses.
        if self.attention_slice not in ("off", "auto") and not (str(self.attention_slice).isascii()
                                                                and str(self.attention_slice).isdigit()
                                                                and int(self.attention_slice) > 0):
            raise ConfigError(f"--attention-slice {self.attention_slice!r}", "use auto, off or a positive number")
        if self.precision == "int8" and self.offload in ("sequential", "stream"):
            raise ConfigError(f"int8 weights cannot be combined with --offload {self.offload}",
                              "use --precision fp16/bf16 with streaming, or int8 with --offload none/model")

    def compute_dtype(self, device_type: str) -> str:
        """The dtype the DiT's activations (and its non-int8 layers) run in."""
        if self.precision != "int8":
            return self.precision
        return "fp16" if device_type == "cuda" else "bf16"

    def vae_dtype(self, device_type: str) -> str:
        return self.vae_precision or self.compute_dtype(device_type)

    @property
    def label(self) -> str:
        parts = [self.precision] + ([f"offload-{self.offload}"] if self.offload != "none" else [])
        if self.vae_precision:
            parts.append(f"vae-{self.vae_precision}")
        if self.attention_slice != "off":
            parts.append(f"slice-{self.attention_slice}")
        if self.vae_slicing:
            parts.append("vae-slicing")
        if self.vae_tiling:
            parts.append("vae-tiling")
        if self.keep_modulation:
            parts.append("keep-modulation")
        return "+".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)


# Fastest first, per device: what `choose_plan` tries. VAE tiling changes the result (34 dB PSNR from untiled on
# DiT-XL/2's VAE at 256², docs/BENCHMARKS.md), so only the last resort uses it.
CANDIDATES = {
    "cuda": [RuntimePlan("fp16"), RuntimePlan("int8"), RuntimePlan("fp16", "model"),
             RuntimePlan("int8", "model", vae_slicing=True), RuntimePlan("fp16", "stream", vae_slicing=True),
             RuntimePlan("fp16", "sequential", vae_slicing=True),
             RuntimePlan("fp16", "sequential", vae_slicing=True, vae_tiling=True)],
    "cpu": [RuntimePlan("bf16"), RuntimePlan("int8"), RuntimePlan("bf16", "model"),
            RuntimePlan("int8", "model", vae_slicing=True), RuntimePlan("bf16", "stream", vae_slicing=True),
            RuntimePlan("bf16", "stream", vae_slicing=True, vae_tiling=True)],
}


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
    from .quantize import MODULATION, int8_targets

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


# Activation model, in units of one activation element; calibrated on DiT-XL/2 + sd-vae (docs/BENCHMARKS.md).
DIT_ACTIVATION_FACTOR = 14      # live [tokens x hidden] tensors at a block's peak (qkv, MLP x4, residuals)
VAE_ACTIVATION_FACTOR = 12      # live [width x image²] tensors at the VAE's full-resolution peak
CPU_OVERHEAD = 1.10             # allocator slack on the CPU


def estimate_peak_bytes(plan: RuntimePlan, sizes: ModelSizes, batch: int, device_type: str,
                        runtime_bytes: int = 0) -> dict:
    """{'total', 'weights', 'activations', 'runtime'} bytes for one batch of `batch` images (CFG doubles the DiT
    batch). device_type 'cuda': device memory; 'cpu': the process RSS, `runtime_bytes` being its RSS now."""
    b = BYTES[plan.compute_dtype(device_type)]
    bv = BYTES[plan.vae_dtype(device_type)]
    s = sizes
    if plan.precision == "int8":
        int8 = s.block_int8_params - (s.block_modulation_params if plan.keep_modulation else 0)
        block = int8 * 1 + (s.block_params - int8) * b + int8 // 64   # + per-row scales
    else:
        block = s.block_params * b
    resident = s.dit_resident_params * b
    enc, dec = s.vae_encoder_params * bv, s.vae_decoder_params * bv
    if plan.offload == "none":
        dit_w, vae_w = resident + s.dit_blocks * block, enc + dec
    elif plan.offload == "model":
        dit_w, vae_w = resident + s.dit_blocks * block, max(enc, dec)
    elif plan.offload == "stream":
        dit_w = resident + (2 if device_type == "cuda" else 1) * block
        vae_w = max(enc, dec)
    else:  # sequential: only the layer running is on the device
        dit_w, vae_w = block // 4, 0
    n_cfg = 2 * batch
    dit_act = DIT_ACTIVATION_FACTOR * n_cfg * s.tokens * s.hidden * b
    # A slice's score matrix (auto leaves SDPA modules alone).
    if str(plan.attention_slice).isascii() and str(plan.attention_slice).isdigit():
        dit_act += int(plan.attention_slice) * s.tokens ** 2 * b
    vae_images = 1 if plan.vae_slicing else batch
    vae_act = VAE_ACTIVATION_FACTOR * vae_images * s.vae_width * s.image_size ** 2 * bv
    if plan.vae_tiling:   # tiles of half the image, at least 128 px (runtime._apply_vae_and_attention)
        tile = min(s.image_size, max(s.image_size // 2, 128))
        vae_act = VAE_ACTIVATION_FACTOR * vae_images * s.vae_width * tile ** 2 * bv
    if device_type == "cuda":
        if plan.offload == "none":
            weights, activations = dit_w + vae_w, max(dit_act, vae_act)
        else:  # the DiT and the VAE are never on the device together
            weights = max(dit_w, vae_w)
            activations = dit_act if dit_w + dit_act >= vae_w + vae_act else vae_act
        total = weights + activations
    else:
        # On the CPU a resident DiT stays while the VAE runs.
        weights = dit_w + vae_w
        activations = max(dit_act, vae_act)
        total = int(runtime_bytes + (weights + activations) * CPU_OVERHEAD)
    return {"total": int(total), "weights": int(weights), "activations": int(activations),
            "runtime": int(runtime_bytes if device_type == "cpu" else 0)}


def choose_plan(budget_bytes: int, sizes: ModelSizes, batch: int, device_type: str, runtime_bytes: int = 0,
                candidates: list[RuntimePlan] | None = None) -> tuple[RuntimePlan, dict]:
    """The first (fastest) candidate whose estimate fits the budget; ConfigError naming the smallest if none."""
    options = candidates or CANDIDATES["cuda" if device_type == "cuda" else "cpu"]
    tried = []
    for plan in options:
        est = estimate_peak_bytes(plan, sizes, batch, device_type, runtime_bytes)
        if est["total"] <= budget_bytes:
            return plan, est
        tried.append((est["total"], plan))
    smallest, plan = min(tried, key=lambda t: t[0])
    what = "GPU memory" if device_type == "cuda" else "RAM"
    raise ConfigError(f"no plan fits {budget_bytes / 2**30:.2f} GB of {what}: the smallest, {plan.label}, needs "
                      f"about {smallest / 2**30:.2f} GB", "raise the budget or lower --batch-size")

