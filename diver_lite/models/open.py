"""Opening a model source once for a runtime: from safetensors folders the models are built weightless and handed on
with the files their weights are read from (memory/runtime.py fills them a tensor at a time, straight into their
dtype and place); any other source is loaded whole. The memory runtime only places what it is given."""

import os
from dataclasses import dataclass

import torch

from diver_lite.models.diver_models import DiverModels
from diver_lite.models.load import load_models
from diver_lite.models.source import SAFETENSORS, ModelSource, resolve_source
from diver_lite.models.weightless import weightless_models
from diver_lite.models.weights_file import WeightsFile


@dataclass
class OpenedModels:
    """`models`: weightless (parameters on the meta device) when `weights` names the files to fill them from,
    else loaded whole on the CPU."""

    models: DiverModels
    weights: tuple[WeightsFile, WeightsFile] | None = None     # (DiT, VAE) safetensors

    @property
    def weightless(self) -> bool:
        return self.weights is not None


def open_models(model: ModelSource | str | os.PathLike | None, vae: str | os.PathLike | None = None,
                timestep_embedding: str | None = None, dtype: torch.dtype = torch.float32) -> OpenedModels:
    """`model`, `vae`: what source.resolve_source takes. `dtype`: what a source loaded whole is read in (a plan's
    compute dtype when it is known before the models are sized; safetensors sources are filled later in theirs)."""
    source = resolve_source(model, vae)
    folders = source.safetensors_folders
    if folders is not None:
        return OpenedModels(weightless_models(source, timestep_embedding),
                            (WeightsFile(folders[0] / SAFETENSORS), WeightsFile(folders[1] / SAFETENSORS)))
    return OpenedModels(load_models(source, device="cpu", dtype=dtype, timestep_embedding=timestep_embedding))
