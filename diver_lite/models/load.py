"""Loading the DiT and the VAE of a ModelSource (source.py): a diffusers folder (as facebook/DiT-XL-2-256 is laid
out) or the original DiT checkpoint converted in memory, checked against their configs."""

import json
import os
from pathlib import Path

import torch

from diver_lite.errors import ModelError, first_line
from diver_lite.models.dit_checkpoint import dit_config_from_state_dict, original_to_diffusers
from diver_lite.models.diver_models import DIT_SCHEDULE, DiverModels, checked_models
from diver_lite.models import timestep_embedding as temb
from diver_lite.models.source import ModelSource, resolve_source
from diver_lite.models.tiny import build_tiny_models
from diver_lite.models.tying import tie_embedders
from diver_lite.models.weights_file import WeightsFile


def load_models(model, vae: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32, tie: bool = True, num_heads: int | None = None,
                timestep_embedding: str | None = None) -> DiverModels:
    """`model`: what source.resolve_source takes (None: the embedded default trained on Fashion-MNIST;
    "tiny-random": random weights, for trying the tool, never for results), or a resolved ModelSource.
    `num_heads`: for an original checkpoint whose hidden size is not one of DiT's named sizes.
    `timestep_embedding`: "dit" or "diffusers" overrides the convention the model records (None: Meta's)."""
    source = resolve_source(model, vae)
    if source.kind == "loaded":   # as they are (device, dtype, tying); only the timestep convention may change
        source.loaded.use_timestep_embedding(source.loaded.timestep_embedding, timestep_embedding)
        return source.loaded
    if source.kind == "tiny":
        models, record = build_tiny_models(seed=0), "diffusers"
    elif source.kind == "checkpoint":
        models, record = _load_original_checkpoint(source, num_heads), None
    else:
        models = _load_diffusers_folder(source, dtype)
        record = temb.recorded(source.path / "transformer" / "config.json")
    models.use_timestep_embedding(record, timestep_embedding)
    if tie:
        models.tied_parameters = tie_embedders(models.transformer)
    for module in (models.transformer, models.vae):
        module.to(device=device).eval().requires_grad_(False)
        if next(module.parameters()).dtype != dtype:
            module.to(dtype=dtype)
    return models


def _missing(folder: Path, needed: list[str]) -> list[str]:
    out = []
    for rel in needed:
        options = rel.split("|")
        if not any((folder / o).exists() for o in options):
            out.append(" or ".join(options))
    return out


WEIGHTS = "diffusion_pytorch_model.safetensors|diffusion_pytorch_model.bin"


def _load_diffusers_folder(source: ModelSource, dtype: torch.dtype = torch.float32) -> DiverModels:
    """Weights are read straight into `dtype` (no fp32 copy first)."""
    from diffusers import DiTTransformer2DModel

    folder, vae = source.path, source.vae
    need = ["transformer/config.json", f"transformer/{WEIGHTS.replace('|', '|transformer/')}"]
    if vae is None:
        need += ["vae/config.json", f"vae/{WEIGHTS.replace('|', '|vae/')}"]
    missing = _missing(folder, need)
    if missing:
        raise ModelError(f"model folder {folder} is incomplete: missing {', '.join(missing)}",
                         "it needs transformer/ and vae/ with config.json and weights, as facebook/DiT-XL-2-256")
    check_weights(folder / "transformer")
    try:
        transformer = DiTTransformer2DModel.from_pretrained(folder / "transformer", low_cpu_mem_usage=False,
                                                            torch_dtype=dtype)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError, MemoryError) as e:
        raise ModelError(f"cannot load the DiT from {folder / 'transformer'}: {first_line(e, 200)}",
                         "check that the folder holds a DiTTransformer2DModel")
    check_fit(transformer, folder / "transformer")
    vae_model = _load_vae(source.vae_folder, dtype)
    return checked_models(DiverModels(transformer, vae_model, read_schedule(folder / "scheduler"), str(folder)))


def _load_vae(path: Path, dtype: torch.dtype = torch.float32) -> "torch.nn.Module":
    from diffusers import AutoencoderKL

    missing = _missing(path, ["config.json", WEIGHTS]) if path.is_dir() else ["the folder itself"]
    if missing:
        raise ModelError(f"VAE folder {path} is incomplete: missing {', '.join(missing)}",
                         "pass --vae with an AutoencoderKL folder (e.g. stabilityai/sd-vae-ft-mse)")
    check_weights(path)
    try:
        vae = AutoencoderKL.from_pretrained(path, low_cpu_mem_usage=False, torch_dtype=dtype)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError, MemoryError) as e:
        raise ModelError(f"cannot load the VAE from {path}: {first_line(e, 200)}",
                         "check that the folder holds an AutoencoderKL")
    check_fit(vae, path)
    return vae


def read_schedule(folder: Path) -> dict:
    """DiT's training schedule, as the folder's scheduler config states it (checked: DIVER's sampler knows the
    linear one)."""
    cfg_file = folder / "scheduler_config.json"
    schedule = dict(DIT_SCHEDULE)
    if cfg_file.is_file():
        try:
            cfg = json.loads(cfg_file.read_text())
        except (ValueError, OSError) as e:
            raise ModelError(f"{cfg_file} is not valid JSON ({first_line(e)})", "restore the file or delete it "
                             "(DiT's linear schedule is then used)")
        if not isinstance(cfg, dict):
            raise ModelError(f"{cfg_file} is not a scheduler config (a JSON object)", "restore or delete the file")
        schedule.update({k: cfg[k] for k in DIT_SCHEDULE if k in cfg})
    ok = (schedule["beta_schedule"] == "linear" and isinstance(schedule["num_train_timesteps"], int)
          and not isinstance(schedule["num_train_timesteps"], bool) and 2 <= schedule["num_train_timesteps"]
          and all(isinstance(schedule[k], (int, float)) and 0 < schedule[k] < 1 for k in ("beta_start", "beta_end")))
    if not ok:
        raise ModelError(f"{cfg_file}: the schedule {schedule} is not one DIVER runs (DiT's is linear betas "
                         "1e-4..0.02 over 1000 steps)", "use a model trained with a linear beta schedule")
    return schedule


def _load_original_checkpoint(source: ModelSource, num_heads: int | None = None) -> DiverModels:
    """The original DiT state dict (e.g. DiT-XL-2-256x256.pt); a training checkpoint's 'ema' weights if present."""
    from diffusers import DiTTransformer2DModel

    path = source.path
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        WeightsFile(path)                       # a damaged file is refused from its header
        sd = load_file(str(path))
    else:
        from diver_lite.layouts.tensors import load_tensors

        try:
            sd = load_tensors(path)
        except Exception as e:  # an InputError's wording is about sets; say it about models
            raise ModelError(f"cannot read checkpoint {path}: {e}", "give DiT's original .pt state dict")
    if isinstance(sd, dict) and "ema" in sd and isinstance(sd["ema"], dict):
        sd = sd["ema"]
    if not isinstance(sd, dict) or "x_embedder.proj.weight" not in sd:
        keys = sorted(sd)[:4] if isinstance(sd, dict) else type(sd).__name__
        raise ModelError(f"{path} is not an original DiT checkpoint (found {keys})",
                         "give DiT-XL-2-256x256.pt or a diffusers model folder")
    try:
        config = dit_config_from_state_dict(sd, num_heads)
        converted = original_to_diffusers(sd, config["num_layers"])
        transformer = DiTTransformer2DModel(**config)
        missing, unexpected = transformer.load_state_dict(converted, strict=False)
    except (KeyError, RuntimeError, ValueError) as e:
        raise ModelError(f"{path} has the wrong keys or shapes for a DiT: {first_line(e, 200)}",
                         "give an unmodified DiT checkpoint")
    if [k for k in missing if "pos_embed.pos_embed" not in k] or unexpected:
        raise ModelError(f"{path}: keys missing {missing[:3]} / unexpected {unexpected[:3]}", "check the checkpoint")
    return checked_models(DiverModels(transformer, _load_vae(source.vae_folder), dict(DIT_SCHEDULE), str(path)))


def check_weights(folder: Path) -> None:
    """A folder's config.json is a JSON object and its safetensors header is sound (read before diffusers
    allocates anything: a garbage header would claim gigabytes)."""
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{folder / 'config.json'} is not valid JSON ({first_line(e)})", "restore the file")
    if not isinstance(cfg, dict):
        raise ModelError(f"{folder / 'config.json'} is not a model config (a JSON object)", "restore the file")
    weights = folder / "diffusion_pytorch_model.safetensors"
    if weights.is_file():
        WeightsFile(weights)


def check_fit(module: "torch.nn.Module", folder: Path) -> None:
    """Every tensor of the folder's safetensors file has the shape the config built (a damaged or foreign config,
    e.g. a garbled key that diffusers replaces by its default, would otherwise fail only in the forward pass)."""
    weights = folder / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        return
    stored = WeightsFile(weights)
    built = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    wrong = [k for k in stored.keys() if k in built and stored.shape(k) != built[k]]
    missing = [k for k in built if k not in stored and "pos_embed.pos_embed" not in k]
    if wrong or missing:
        detail = (f"{wrong[0]} is {stored.shape(wrong[0])} in the weights but {built[wrong[0]]} in the model"
                  if wrong else f"{len(missing)} tensors missing, e.g. {missing[0]}")
        raise ModelError(f"{folder}: config.json and the weights do not fit ({detail})",
                         "restore config.json (or the weights) of this model")


