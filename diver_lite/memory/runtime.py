"""Building the torch runtime of a plan from opened models (models/open.py): the models cast to the plan's dtypes,
int8 layers swapped in, and a placement (offload.py) deciding where weights wait. Weightless models are filled a
tensor at a time from their safetensors, straight into their dtype and place (no full-precision copy in RAM, int8
blocks quantized as they are read); models loaded whole are cast and placed. Nothing here chooses how to load."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from diver_lite.memory.estimate import ModelSizes, model_sizes
from diver_lite.memory.offload import VAE_PARTS, BlockStream, ModelOffload, Resident, SequentialOffload
from diver_lite.memory.plan import RuntimePlan, apply_tactics
from diver_lite.memory.tactics.offload import stream_needs_safetensors
from diver_lite.memory.tactics.precision import COMPUTE_DTYPES, PRECISIONS, quantizer
from diver_lite.models.diver_models import DiverModels
from diver_lite.models.lazy_weights import map_large_allocations, materialize, return_free_memory

if TYPE_CHECKING:   # the type of what it is handed; opening a source is models/open.py's alone
    from diver_lite.models.open import OpenedModels

DTYPES = {name: getattr(torch, dtype.torch_name) for name, dtype in COMPUTE_DTYPES.items()}   # (a view of the table)
EMBEDDER = "norm1.emb."


@dataclass
class Runtime:
    models: DiverModels
    placement: object
    device: torch.device
    plan: RuntimePlan
    quantized_layers: int = 0        # block linears held in int8 or fp8

    @property
    def int8_layers(self) -> int:
        return self.quantized_layers if self.plan.precision == "int8" else 0


def torch_dtype(plan: RuntimePlan, device_type: str) -> torch.dtype:
    """The dtype the plan runs the DiT in on this device (what a source loaded whole is best read in)."""
    return DTYPES[plan.compute_dtype(device_type)]


def sizes_of(opened: "OpenedModels") -> ModelSizes:
    """ModelSizes of opened models (weightless ones are sized from their configs, nothing read)."""
    return model_sizes(opened.models.transformer, opened.models.vae)


def build_runtime(opened: "OpenedModels", device: torch.device, plan: RuntimePlan) -> Runtime:
    """The runtime of `plan` on `device` over `opened` (models/open.py), which it fills, casts and places."""
    plan.check_device(device.type)
    dit_dtype, vae_dtype = torch_dtype(plan, device.type), DTYPES[plan.vae_dtype(device.type)]
    models = opened.models
    if not opened.weightless:
        if plan.offload == "stream" and device.type == "cpu":
            raise stream_needs_safetensors()
        return _place_loaded(models, device, plan, dit_dtype, vae_dtype)
    if device.type == "cpu" and plan.offload == "stream":
        map_large_allocations()
    torch.nn.Module.to(models.transformer, dit_dtype)   # (diffusers' own .to warns about every cast)
    torch.nn.Module.to(models.vae, vae_dtype)
    return _place_lazy(models, *opened.weights, device, plan, dit_dtype, vae_dtype)


def _vae_parts(vae) -> dict:
    return {part: [(getattr(vae, name), f"{name}.") for name in names] for part, names in VAE_PARTS.items()}


def _resident_dit_parts(transformer, skip_tied: bool):
    """(module, prefix, skip) of what is outside the blocks, and block 0's embedder when it is shared."""
    parts = [(m, f"{n}.", ()) for n, m in transformer.named_children() if n != "transformer_blocks"]
    if skip_tied:
        parts.append((transformer.transformer_blocks[0].norm1.emb, f"transformer_blocks.0.{EMBEDDER}", ()))
    return parts


def _place_lazy(models, dit_file, vae_file, device, plan, dit_dtype, vae_dtype) -> Runtime:
    t, vae = models.transformer, models.vae
    tied = models.tied_parameters > 0
    skip = (EMBEDDER.rstrip("."),) if tied else ()
    # Where the DiT's weights live: on the device, unless an offload keeps them in RAM between uses (bitsandbytes'
    # int8 layers stay where they were made).
    lowbit, moves = quantizer(plan.precision), PRECISIONS[plan.precision].moves
    on_device = plan.offload in ("none", "stream") or device.type == "cpu" or not moves
    where = device if on_device else torch.device("cpu")
    for module, prefix, _ in _resident_dit_parts(t, tied):
        materialize(module, dit_file, prefix, device=where, dtype=dit_dtype)
        module.to(where)   # its buffers (the positional table) too
    quantized = 0
    for i, block in enumerate(t.transformer_blocks):
        if plan.offload == "stream":
            if device.type == "cuda":   # into pinned RAM (in the stored precision); copied in when it runs
                materialize(block, dit_file, f"transformer_blocks.{i}.", skip, "cpu", dit_dtype, pin=lowbit is None)
                if lowbit is not None:
                    quantized += len(lowbit(block, device, plan.keep_modulation))
            continue
        if lowbit is not None:
            materialize(block, dit_file, f"transformer_blocks.{i}.", skip, "cpu", dit_dtype)
            quantized += len(lowbit(block, device, plan.keep_modulation))
            block.to(where)
        else:
            materialize(block, dit_file, f"transformer_blocks.{i}.", skip, where, dit_dtype)
        return_free_memory()
    files = {"encoder": vae_file, "decoder": vae_file} if device.type == "cpu" else None
    if plan.offload in ("model", "stream"):
        if files is None:
            materialize(vae, vae_file, device="cpu", dtype=vae_dtype)
        vae_offload = ModelOffload(device, _vae_parts(vae), files, vae_dtype)
        if plan.offload == "stream":
            placement = BlockStream(device, t, vae_offload, None if device.type == "cuda" else dit_file, dit_dtype,
                                    skip)
        else:
            moves_dit = device.type == "cuda" and moves
            parts = {**_vae_parts(vae), **({"transformer": [(t, "")]} if moves_dit else {})}
            placement = ModelOffload(device, parts, files, vae_dtype)
    else:
        materialize(vae, vae_file, device=device if plan.offload == "none" else "cpu", dtype=vae_dtype)
        placement = (SequentialOffload(device, [t, vae]) if plan.offload == "sequential" else Resident(device))
    apply_tactics(models, plan)
    return_free_memory()
    return Runtime(models, placement, device, plan, quantized)


def _place_loaded(models, device, plan, dit_dtype, vae_dtype) -> Runtime:
    """Models already in RAM (an original checkpoint, tiny-random, given DiverModels)."""
    t, vae = models.transformer, models.vae
    t.to(dit_dtype).eval().requires_grad_(False)
    vae.to(vae_dtype).eval().requires_grad_(False)
    quantized, lowbit, moves = 0, quantizer(plan.precision), PRECISIONS[plan.precision].moves
    if lowbit is not None:
        t.to("cpu")
        quantized = len(lowbit(t, device, plan.keep_modulation))
        t.to(device)   # bitsandbytes quantizes on the move; its int8 layers stay where made
    if plan.offload == "none" or device.type == "cpu" and plan.offload == "model":
        t.to(device)
        vae.to(device)
        placement = Resident(device)
    elif plan.offload == "model":
        t.to(device)
        placement = ModelOffload(device, {**_vae_parts(vae), **({"transformer": [(t, "")]} if moves else {})})
    elif plan.offload == "sequential":
        placement = SequentialOffload(device, [t, vae])
    else:  # stream on CUDA from RAM
        tied = models.tied_parameters > 0
        skip = (EMBEDDER.rstrip("."),) if tied else ()
        for module, _, _ in _resident_dit_parts(t, tied):
            module.to(device)
        placement = BlockStream(device, t, ModelOffload(device, _vae_parts(vae)), None, dit_dtype, skip)
    apply_tactics(models, plan)
    return Runtime(models, placement, device, plan, quantized)
