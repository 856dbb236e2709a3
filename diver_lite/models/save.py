"""Writing DiverModels as a diffusers folder (transformer/, vae/, scheduler/) with safetensors weights."""

import os
from pathlib import Path

from diver_lite.models import timestep_embedding as temb
from diver_lite.models.diver_models import DiverModels
from diver_lite.models.tying import untied_state_dict


def save_models(models: DiverModels, folder: str | os.PathLike) -> Path:
    """Write a diffusers folder (transformer/, vae/, scheduler/) that `load_models` reads back."""
    from diffusers import DDPMScheduler
    from safetensors.torch import save_file

    folder = Path(folder)
    for name, module in (("transformer", models.transformer), ("vae", models.vae)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        module.save_config(folder / name)
        if name == "transformer":
            temb.record(folder / name / "config.json", models.timestep_embedding)
        tensors = {k: v.detach().cpu().contiguous() for k, v in untied_state_dict(module).items()}
        save_file(tensors, str(folder / name / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
    DDPMScheduler(**models.schedule).save_pretrained(folder / "scheduler")
    return folder
