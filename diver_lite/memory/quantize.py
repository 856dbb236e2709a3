"""Low-bit weights for the DiT's block linears: int8 (bitsandbytes / torchao), fp8 storage, NF4 (bitsandbytes)."""

# int8 weights for the DiT's linear layers. CUDA: bitsandbytes' LLM.int8 layers (Linear8bitLt, fp16 compute);
# CPU: torchao's dynamic int8 (int8 weights, activations quantized per token at run time, int8 matmul).
#
# What stays in 16/32 bit: the patch embedding (a conv), the class/timestep embedders, and the final projection;
# with `keep_modulation` also the adaLN modulation (norm1.linear, 8 M parameters per block in XL), which is what
# shifts and scales every block and is most sensitive to rounding.

import torch

from diver_lite.errors import ConfigError, MissingDependencyError

SKIP_ALWAYS = ("pos_embed", "norm1.emb", "proj_out")
MODULATION = "norm1.linear"


def int8_targets(transformer: torch.nn.Module, keep_modulation: bool = False) -> list[str]:
    """Names of the nn.Linear layers that become int8."""
    skip = SKIP_ALWAYS + ((MODULATION,) if keep_modulation else ())
    return [name for name, m in transformer.named_modules()
            if isinstance(m, torch.nn.Linear) and not any(s in name for s in skip)]


def quantize_int8(transformer: torch.nn.Module, device: torch.device, keep_modulation: bool = False) -> list[str]:
    """Quantize in place (weights must be real, on the CPU for CUDA targets); returns the layers changed."""
    targets = set(int8_targets(transformer, keep_modulation))
    if device.type == "cuda":
        _bitsandbytes(transformer, targets)
    elif device.type == "cpu":
        _torchao(transformer, targets)
    else:
        raise ConfigError(f"int8 is not available on {device.type}", "use --device cpu or cuda")
    return sorted(targets)


def _torchao(transformer, targets: set[str]) -> None:
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError:
        raise MissingDependencyError("torchao", "int8 on the CPU", "pip install 'diver-lite[int8]'")
    quantize_(transformer, Int8DynamicActivationInt8WeightConfig(),
              filter_fn=lambda module, name: name in targets and isinstance(module, torch.nn.Linear))


def _bitsandbytes(transformer, targets: set[str]) -> None:
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise MissingDependencyError("bitsandbytes", "int8 on CUDA", "pip install 'diver-lite[int8]'")
    for name in targets:
        parent_name, _, leaf = name.rpartition(".")
        parent = transformer.get_submodule(parent_name) if parent_name else transformer
        old = getattr(parent, leaf)
        new = bnb.nn.Linear8bitLt(old.in_features, old.out_features, bias=old.bias is not None,
                                  has_fp16_weights=False, threshold=6.0, device="cpu")
        new.weight = bnb.nn.Int8Params(old.weight.data.to("cpu", torch.float16), requires_grad=False,
                                       has_fp16_weights=False)
        if old.bias is not None:
            new.bias = torch.nn.Parameter(old.bias.data.to("cpu", torch.float16), requires_grad=False)
        setattr(parent, leaf, new)   # moving the module to CUDA quantizes its weights


def store_fp8(transformer: torch.nn.Module, device: torch.device, keep_modulation: bool = False) -> list[str]:
    """float8_e4m3 storage for the same linears as int8, computed in the dtype they have now (bf16) through diffusers'
    layerwise casting (each layer is cast up for its forward and back after it); returns the layers changed."""
    from diffusers.hooks import apply_layerwise_casting

    targets = int8_targets(transformer, keep_modulation)
    compute = next(transformer.parameters()).dtype
    for name in targets:
        apply_layerwise_casting(transformer.get_submodule(name), storage_dtype=torch.float8_e4m3fn,
                                compute_dtype=compute, skip_modules_pattern=())
    return targets


def quantize_nf4(transformer: torch.nn.Module, device: torch.device, keep_modulation: bool = False) -> list[str]:
    """bitsandbytes' NF4 (4-bit NormalFloat, blocks of 64) for the same linears as int8, computed in the dtype they
    have now; the weights are quantized when the module moves to CUDA. Returns the layers changed."""
    if device.type != "cuda":
        raise ConfigError("nf4 runs through bitsandbytes on CUDA", "use --precision int8 or fp8 on the CPU")
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise MissingDependencyError("bitsandbytes", "nf4 on CUDA", "pip install 'diver-lite[int8]'")
    targets = int8_targets(transformer, keep_modulation)
    compute = next(transformer.parameters()).dtype
    for name in targets:
        parent_name, _, leaf = name.rpartition(".")
        parent = transformer.get_submodule(parent_name) if parent_name else transformer
        old = getattr(parent, leaf)
        new = bnb.nn.Linear4bit(old.in_features, old.out_features, bias=old.bias is not None, compute_dtype=compute,
                                quant_type="nf4", device="cpu")
        new.weight = bnb.nn.Params4bit(old.weight.data.to("cpu", compute), requires_grad=False, quant_type="nf4")
        if old.bias is not None:
            new.bias = torch.nn.Parameter(old.bias.data.to("cpu", compute), requires_grad=False)
        setattr(parent, leaf, new)   # moving the module to CUDA quantizes its weights
    return targets


def quantize_fp8_compute(transformer: torch.nn.Module, device: torch.device,
                         keep_modulation: bool = False) -> list[str]:
    """torchao's dynamic float8 (weights and per-row activations in float8_e4m3, fp8 matmuls) for the same linears
    as int8; needs CUDA compute capability 8.9 or newer (Ada, Hopper). Returns the layers changed."""
    if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9):
        raise ConfigError("fp8-compute needs a GPU with fp8 tensor cores (compute capability 8.9+)",
                          "use --precision fp8 (fp8 storage, bf16 compute) instead")
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_
    except ImportError:
        raise MissingDependencyError("torchao", "fp8-compute", "pip install 'diver-lite[int8]'")
    targets = set(int8_targets(transformer, keep_modulation))
    transformer.to(device)
    quantize_(transformer, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()),
              filter_fn=lambda module, name: name in targets and isinstance(module, torch.nn.Linear))
    return sorted(targets)
