"""The DiT and the VAE built from their configs with no weights (parameters on the meta device): for sizing a
plan and for filling the weights a tensor at a time from safetensors (memory/runtime.py)."""

import json

from diver_lite.errors import ModelError, first_line
from diver_lite.models.diver_models import DiverModels, checked_models
from diver_lite.models.lazy_weights import empty_weights
from diver_lite.models.load import check_fit, check_weights, read_schedule
from diver_lite.models import timestep_embedding as temb
from diver_lite.models.source import SAFETENSORS, ModelSource
from diver_lite.models.tying import tie_from_file
from diver_lite.models.weights_file import WeightsFile


def weightless_models(source: ModelSource, timestep_embedding: str | None = None) -> DiverModels:
    """For a source with safetensors weights (ModelSource.safetensors_folders): the models, weightless, running
    the timestep embedding the DiT's config records (or `timestep_embedding`), embedders tied when the file's
    copies are equal."""
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    dit_folder, vae_folder = source.safetensors_folders
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
    models = checked_models(DiverModels(transformer.eval(), vae.eval(), read_schedule(source.path / "scheduler"),
                                        str(source.path)))
    models.use_timestep_embedding(temb.recorded(dit_folder / "config.json"), timestep_embedding)
    models.tied_parameters = tie_from_file(models.transformer, WeightsFile(dit_folder / SAFETENSORS))
    return models
