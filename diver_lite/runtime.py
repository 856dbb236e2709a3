"""Building the torch runtime for a plan (runtime_plan.py): the models are loaded in the plan's dtypes, int8
layers swapped in, and a placement (offload.py) decides where weights wait. From a diffusers folder with
safetensors weights the models are built weightless and filled a tensor at a time, straight into their dtype and
place (no full-precision copy in RAM, int8 blocks quantized as they are read); other sources load whole first."""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from . import timestep_embedding as temb
from .errors import ConfigError, ModelError, first_line
from .lazy_weights import empty_weights, map_large_allocations, materialize, return_free_memory
from .hub import looks_like_repo, resolve_repo
from .models import (EMBEDDED_DEFAULT, TINY_RANDOM, DiverModels, checked_models, read_schedule, check_fit,
                     check_weights, load_models)
from .offload import VAE_PARTS, BlockStream, ModelOffload, Resident, SequentialOffload
from .quantize import quantize_int8
from .runtime_plan import RuntimePlan
from .weights_file import WeightsFile

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SAFETENSORS = "diffusion_pytorch_model.safetensors"
EMBEDDER = "norm1.emb."


@dataclass
class Runtime:
    models: DiverModels
    placement: object
    device: torch.device
    plan: RuntimePlan
    int8_layers: int = 0


def weights_source(model, vae) -> tuple[Path, Path] | None:
    """(transformer folder, vae folder) when both hold safetensors weights, else None (load whole)."""
    if model is None:
        model = EMBEDDED_DEFAULT
    if isinstance(model, DiverModels) or str(model) == TINY_RANDOM:
        return None
    folder = Path(model)
    if not folder.is_dir() and looks_like_repo(str(model)) and not folder.suffix:
        folder = resolve_repo(str(model))
    if not folder.is_dir():
        return None
    vae_folder = folder / "vae" if vae is None else Path(vae)
    if vae is not None and not vae_folder.is_dir() and looks_like_repo(str(vae)):
        vae_folder = resolve_repo(str(vae))
    dit_folder = folder / "transformer"
    ok = all((f / "config.json").is_file() and (f / SAFETENSORS).is_file() for f in (dit_folder, vae_folder))
    return (dit_folder, vae_folder) if ok else None


def empty_models(dit_folder: Path, vae_folder: Path, schedule_folder: Path, source: str,
                 timestep_embedding: str | None = None) -> DiverModels:
    """The DiT and the VAE from their configs, weightless (parameters on the meta device), running the timestep
    embedding the DiT's config records (or `timestep_embedding`)."""
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    for folder in (dit_folder, vae_folder):
        check_weights(folder)
    try:
        with empty_weights():
            transformer = DiTTransformer2DModel.from_config(json.loads((dit_folder / "config.json").read_text()))
            vae = AutoencoderKL.from_config(json.loads((vae_folder / "config.json").read_text()))
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as e:
        raise ModelError(f"cannot load the DiT and VAE configs in {dit_folder.parent}: {first_line(e)}",
                         "check transformer/config.json and vae/config.json")
    check_fit(transformer, dit_folder)
    check_fit(vae, vae_folder)
    models = checked_models(DiverModels(transformer.eval(), vae.eval(), read_schedule(schedule_folder), source))
    models.use_timestep_embedding(temb.recorded(dit_folder / "config.json"), timestep_embedding)
    return models


def tie_from_file(transformer, source: WeightsFile) -> int:
    """Share block 0's embedder with every block if the file's copies are equal (read one at a time)."""
    blocks = transformer.transformer_blocks
    names = [n for n, _ in blocks[0].norm1.emb.named_parameters()]
    for i in range(1, len(blocks)):
        for n in names:
            a = source.get(f"transformer_blocks.0.norm1.emb.{n}")
            if not torch.equal(a, source.get(f"transformer_blocks.{i}.norm1.emb.{n}")):
                return 0
    saved = 0
    for block in blocks[1:]:
        saved += sum(p.numel() for p in block.norm1.emb.parameters())
        block.norm1.emb = blocks[0].norm1.emb
    return saved


def build_runtime(model, vae, device: torch.device, plan: RuntimePlan,
                  timestep_embedding: str | None = None) -> Runtime:
    if device.type == "cpu" and "fp16" in (plan.compute_dtype("cpu"), plan.vae_dtype("cpu")):
        raise ConfigError("fp16 on the CPU runs several times slower than fp32", "use --precision bf16 on CPU")
    if device.type == "mps" and (plan.precision == "int8" or plan.offload in ("sequential", "stream")):
        raise ConfigError(f"{plan.label} is not available on MPS (int8 kernels and streaming are CPU/CUDA only)",
                          "on Apple silicon use --precision fp16 or bf16, or --offload model")
    if plan.offload == "sequential" and device.type != "cuda":
        raise ConfigError("--offload sequential moves weights to a GPU layer by layer and needs CUDA",
                          "on the CPU use --offload stream (or model) to lower RAM")
    dit_dtype = DTYPES[plan.compute_dtype(device.type)]
    vae_dtype = DTYPES[plan.vae_dtype(device.type)]
    if isinstance(model, DiverModels) and timestep_embedding is not None:
        model.use_timestep_embedding(None, timestep_embedding)
    source = None if isinstance(model, DiverModels) else weights_source(model, vae)
    if source is None:
        if plan.offload == "stream" and device.type == "cpu":
            raise ConfigError("--offload stream on the CPU reads DiT blocks from a safetensors file",
                              "give --model a diffusers folder with .safetensors weights (see models.save_models)")
        models = model if isinstance(model, DiverModels) else load_models(
            model, vae, device="cpu", dtype=dit_dtype, timestep_embedding=timestep_embedding)
        return _place_loaded(models, device, plan, dit_dtype, vae_dtype)
    if device.type == "cpu" and plan.offload == "stream":
        map_large_allocations()
    dit_file, vae_file = WeightsFile(source[0] / SAFETENSORS), WeightsFile(source[1] / SAFETENSORS)
    models = empty_models(source[0], source[1], source[0].parent / "scheduler", str(source[0].parent),
                          timestep_embedding)
    torch.nn.Module.to(models.transformer, dit_dtype)   # (diffusers' own .to warns about every cast)
    torch.nn.Module.to(models.vae, vae_dtype)
    models.tied_parameters = tie_from_file(models.transformer, dit_file)
    return _place_lazy(models, dit_file, vae_file, device, plan, dit_dtype, vae_dtype)


def sizes_for(model, vae):
    """ModelSizes without reading weights where the configs allow (runtime_plan.model_sizes)."""
    from .runtime_plan import model_sizes

    if isinstance(model, DiverModels):
        return model_sizes(model.transformer, model.vae)
    source = weights_source(model, vae)
    if source is not None:
        empty = empty_models(source[0], source[1], source[0].parent / "scheduler", "")
        empty.tied_parameters = tie_from_file(empty.transformer, WeightsFile(source[0] / SAFETENSORS))
        return model_sizes(empty.transformer, empty.vae)
    models = load_models(model, vae, device="cpu")
    return model_sizes(models.transformer, models.vae)


def plan_for_budget(model, vae, device: torch.device, budget_gb: float, batch_size: int = 1):
    """The fastest plan whose estimated peak fits `budget_gb` (device memory on CUDA, process RSS on the CPU)."""
    from .report import current_rss_bytes
    from .runtime_plan import choose_plan

    if budget_gb <= 0:
        raise ConfigError(f"memory budget {budget_gb} GB", "give a positive number of GB")
    sizes = sizes_for(model, vae)
    return choose_plan(int(budget_gb * 2**30), sizes, batch_size, device.type,
                       current_rss_bytes() if device.type == "cpu" else 0)


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
    # Where the DiT's weights live: on the device, unless an offload keeps them in RAM between uses (int8 layers
    # stay where they were made).
    on_device = plan.offload in ("none", "stream") or device.type == "cpu" or plan.precision == "int8"
    where = device if on_device else torch.device("cpu")
    for module, prefix, _ in _resident_dit_parts(t, tied):
        materialize(module, dit_file, prefix, device=where, dtype=dit_dtype)
        module.to(where)   # its buffers (the positional table) too
    int8 = 0
    for i, block in enumerate(t.transformer_blocks):
        if plan.offload == "stream":
            if device.type == "cuda":   # into pinned RAM; BlockStream copies each block in when it runs
                materialize(block, dit_file, f"transformer_blocks.{i}.", skip, "cpu", dit_dtype, pin=True)
            continue
        if plan.precision == "int8":
            materialize(block, dit_file, f"transformer_blocks.{i}.", skip, "cpu", dit_dtype)
            int8 += len(quantize_int8(block, device, plan.keep_modulation))
            block.to(device)
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
            moves_dit = device.type == "cuda" and plan.precision != "int8"   # int8 layers stay where made
            parts = {**_vae_parts(vae), **({"transformer": [(t, "")]} if moves_dit else {})}
            placement = ModelOffload(device, parts, files, vae_dtype)
    else:
        materialize(vae, vae_file, device=device if plan.offload == "none" else "cpu", dtype=vae_dtype)
        placement = (SequentialOffload(device, [t, vae]) if plan.offload == "sequential" else Resident(device))
    _apply_vae_and_attention(models, plan)
    return_free_memory()
    return Runtime(models, placement, device, plan, int8)


def _place_loaded(models, device, plan, dit_dtype, vae_dtype) -> Runtime:
    """Models already in RAM (an original checkpoint, tiny-random, given DiverModels)."""
    t, vae = models.transformer, models.vae
    t.to(dit_dtype).eval().requires_grad_(False)
    vae.to(vae_dtype).eval().requires_grad_(False)
    int8 = 0
    if plan.precision == "int8":
        t.to("cpu")
        int8 = len(quantize_int8(t, device, plan.keep_modulation))
        t.to(device)   # bitsandbytes quantizes on the move; int8 layers stay where made
    if plan.offload == "none" or device.type == "cpu" and plan.offload == "model":
        t.to(device)
        vae.to(device)
        placement = Resident(device)
    elif plan.offload == "model":
        t.to(device)
        placement = ModelOffload(device, {**_vae_parts(vae), **({} if int8 else {"transformer": [(t, "")]})})
    elif plan.offload == "sequential":
        placement = SequentialOffload(device, [t, vae])
    else:  # stream on CUDA from RAM
        tied = models.tied_parameters > 0
        skip = (EMBEDDER.rstrip("."),) if tied else ()
        for module, _, _ in _resident_dit_parts(t, tied):
            module.to(device)
        placement = BlockStream(device, t, ModelOffload(device, _vae_parts(vae)), None, dit_dtype, skip)
    _apply_vae_and_attention(models, plan)
    return Runtime(models, placement, device, plan, int8)


def _apply_vae_and_attention(models, plan) -> None:
    from .attention_slicing import set_attention_slice

    vae = models.vae
    vae.use_slicing = plan.vae_slicing
    vae.use_tiling = plan.vae_tiling
    if plan.vae_tiling and hasattr(vae, "tile_sample_min_size"):
        # diffusers tiles only images larger than the VAE's sample size (256² for sd-vae), so at the model's own
        # size tiling would do nothing; quarter tiles (with diffusers' 25% overlap blending) cut the VAE's peak.
        # Never below 128 px: smaller tiles cost too much fidelity (measured: 16 px tiles on the 32² embedded
        # default, 15.9 dB PSNR from untiled).
        tile = min(vae.tile_sample_min_size, max(models.image_size // 2, 128))
        vae.tile_sample_min_size = tile
        vae.tile_latent_min_size = tile // models.vae_scale_factor
    set_attention_slice(plan.attention_slice, models.transformer, models.vae)

