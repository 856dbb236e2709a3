"""ModelSource: what `--model`/`--vae` name, interpreted once (the embedded default, tiny-random, an original DiT
checkpoint, a diffusers folder or a hub repo resolved to its local snapshot, or DiverModels already loaded)."""

import os
from dataclasses import dataclass
from pathlib import Path

from diver_lite.errors import ModelError
from diver_lite.models.hub import DEFAULT_VAE, looks_like_repo, resolve_repo

TINY_RANDOM = "tiny-random"
# The embedded default: a small DiT + VAE trained on Fashion-MNIST by `diver-lite train-prior` (MODEL_CARD.md there).
EMBEDDED_DEFAULT = Path(__file__).parents[1] / "assets" / "default_prior"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
SAFETENSORS = "diffusion_pytorch_model.safetensors"


@dataclass(frozen=True)
class ModelSource:
    kind: str                      # "loaded" | "tiny" | "checkpoint" | "diffusers"
    path: Path | None = None       # the checkpoint file or the diffusers folder
    vae: str | Path | None = None  # the VAE folder or repo id as given (None: the diffusers folder's vae/)
    loaded: object = None          # DiverModels, for kind "loaded"

    @property
    def vae_folder(self) -> Path | None:
        """The VAE's local folder; a repo id is resolved (the cache, else one download) only when asked for, so a
        damaged checkpoint is reported before any download."""
        if self.vae is not None:
            return _folder(self.vae)
        return self.path / "vae" if self.kind == "diffusers" else None

    @property
    def safetensors_folders(self) -> tuple[Path, Path] | None:
        """(transformer folder, vae folder) when both hold a config and safetensors weights: the models can then
        be built weightless and filled a tensor at a time (memory/runtime.py); else None (load whole)."""
        if self.kind != "diffusers":
            return None
        folders = (self.path / "transformer", self.vae_folder)
        ok = all((f / "config.json").is_file() and (f / SAFETENSORS).is_file() for f in folders)
        return folders if ok else None


def is_embedded_prior(model) -> bool:
    """Does `model` (what --model names; None: the default) name the embedded Fashion-MNIST prior?"""
    if model is None:
        return True
    if not isinstance(model, (str, os.PathLike)):
        return False
    try:
        return Path(model).resolve() == EMBEDDED_DEFAULT.resolve()
    except (OSError, ValueError):
        return False


def _folder(name: str | os.PathLike) -> Path:
    """A local folder as given, else a repo id resolved through the hub (hub.py)."""
    path = Path(name)
    return resolve_repo(str(name)) if not path.is_dir() and looks_like_repo(str(name)) else path


def resolve_source(model, vae: str | os.PathLike | None = None) -> ModelSource:
    """`model`: None (the embedded default), "tiny-random", an original DiT .pt/.pth/.safetensors checkpoint, a
    diffusers folder, a repo id or DiT short name (the local cache, else one download unless offline), loaded
    DiverModels, or a ModelSource (returned as is). `vae`: a folder or repo id; for an original checkpoint the
    default is DiT's own, stabilityai/sd-vae-ft-mse."""
    if isinstance(model, ModelSource):
        return model
    if model is not None and not isinstance(model, (str, os.PathLike)):   # DiverModels
        return ModelSource("loaded", loaded=model)
    if model is None and (EMBEDDED_DEFAULT / "transformer").is_dir():
        model = EMBEDDED_DEFAULT
    if model is None:
        raise ModelError("no model given and the embedded default is not installed",
                         "pass --model (a diffusers DiT folder, DiT-XL-2-256x256.pt, a cached "
                         "repo id such as facebook/DiT-XL-2-256, or tiny-random to try the tool)")
    path = Path(model)
    if str(model) == TINY_RANDOM:
        return ModelSource("tiny")
    if path.is_file():
        return ModelSource("checkpoint", path, vae if vae is not None else DEFAULT_VAE)
    if path.is_dir() or (looks_like_repo(str(model)) and path.suffix not in CHECKPOINT_SUFFIXES):
        return ModelSource("diffusers", _folder(model), vae)
    raise ModelError(f"model {model} does not exist", "check the path given to --model")
