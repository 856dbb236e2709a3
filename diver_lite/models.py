"""Loading the DiT and the VAE, in one place: a diffusers folder (as facebook/DiT-XL-2-256 is laid out), a repo id
resolved through the Hugging Face Hub (hub.py: the cache, else one download unless offline), or the original DiT
checkpoint converted in memory.
Sizes (image, latent, channels, null class) always come from the model configs."""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .dit_checkpoint import dit_config_from_state_dict, original_to_diffusers
from .errors import ModelError, first_line
from .weights_file import WeightsFile
from . import timestep_embedding as temb
from .hub import DEFAULT_VAE, looks_like_repo, resolve_repo

# DiT's diffusion (SPEC §2): 1000 steps, linear betas 1e-4 .. 0.02.
DIT_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear"}
SD_VAE_SCALING = 0.18215
TINY_RANDOM = "tiny-random"
# The embedded default: a small DiT + VAE trained on Fashion-MNIST by `diver-lite train-prior` (MODEL_CARD.md there).
EMBEDDED_DEFAULT = Path(__file__).parent / "assets" / "default_prior"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


@dataclass
class DiverModels:
    transformer: "torch.nn.Module"   # diffusers DiTTransformer2DModel (learned sigma: out = 2 x in channels)
    vae: "torch.nn.Module"           # diffusers AutoencoderKL
    schedule: dict = field(default_factory=lambda: dict(DIT_SCHEDULE))
    source: str = ""
    tied_parameters: int = 0         # parameters saved by sharing the per-block embedders
    timestep_embedding: str = "diffusers"   # the convention the transformer computes (timestep_embedding.py)

    @property
    def latent_channels(self) -> int:
        return self.transformer.config.in_channels

    @property
    def latent_size(self) -> int:
        return self.transformer.config.sample_size

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        return self.latent_size * self.vae_scale_factor

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def num_classes(self) -> int:
        return int(self.transformer.config.num_embeds_ada_norm)

    @property
    def null_class(self) -> int:
        """The CFG null label: the extra last row of the class table (1000 for DiT-XL/2)."""
        return self.num_classes

    @property
    def learned_sigma(self) -> bool:
        return self.transformer.config.out_channels == 2 * self.latent_channels

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    def describe(self) -> dict:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731 (parameters() skips shared ones)
        return {"source": self.source, "image_size": self.image_size, "latent": [self.latent_channels,
                self.latent_size, self.latent_size], "num_classes": self.num_classes,
                "transformer_parameters": count(self.transformer), "vae_parameters": count(self.vae),
                "dtype": str(next(self.transformer.parameters()).dtype).replace("torch.", ""),
                "tied_parameters": self.tied_parameters, "timestep_embedding": self.timestep_embedding}

    def use_timestep_embedding(self, record: str | None, override: str | None = None) -> None:
        """Run the convention the weights were trained with (`record`; None: Meta's), or `override`."""
        self.timestep_embedding = temb.resolve(record, override)
        temb.apply(self.transformer, self.timestep_embedding)


def load_models(model: str | os.PathLike | None, vae: str | os.PathLike | None = None,
                device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                tie: bool = True, num_heads: int | None = None,
                timestep_embedding: str | None = None) -> DiverModels:
    """`model`: a diffusers folder, an original DiT .pt/.pth/.safetensors checkpoint, a repo id in the local HF
    cache, "tiny-random" (a 2-layer DiT with random weights: for trying the tool, never for results), or None:
    the embedded default trained on Fashion-MNIST.
    `num_heads`: for an original checkpoint whose hidden size is not one of DiT's named sizes.
    `timestep_embedding`: "dit" or "diffusers" overrides the convention the model records (None: Meta's)."""
    if model is None and (EMBEDDED_DEFAULT / "transformer").is_dir():
        model = EMBEDDED_DEFAULT
    if model is None:
        raise ModelError("no model given and the embedded default is not installed",
                         "pass --model (a diffusers DiT folder, DiT-XL-2-256x256.pt, a cached "
                         "repo id such as facebook/DiT-XL-2-256, or tiny-random to try the tool)")
    path = Path(model)
    if str(model) == TINY_RANDOM:
        models, record = build_tiny_models(seed=0), "diffusers"
    elif path.is_file():
        models, record = _load_original_checkpoint(path, vae, num_heads), None
    elif path.is_dir() or (looks_like_repo(str(model)) and path.suffix not in CHECKPOINT_SUFFIXES):
        folder = path if path.is_dir() else resolve_repo(str(model))
        models = _load_diffusers_folder(folder, vae, dtype)
        record = temb.recorded(folder / "transformer" / "config.json")
    else:
        raise ModelError(f"model {model} does not exist", "check the path given to --model")
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


def _load_diffusers_folder(folder: Path, vae: str | os.PathLike | None,
                           dtype: torch.dtype = torch.float32) -> DiverModels:
    """Weights are read straight into `dtype` (no fp32 copy first)."""
    from diffusers import DiTTransformer2DModel

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
    vae_model = _load_vae(vae if vae is not None else folder / "vae", dtype)
    return checked_models(DiverModels(transformer, vae_model, read_schedule(folder / "scheduler"), str(folder)))


def _load_vae(vae: str | os.PathLike, dtype: torch.dtype = torch.float32) -> "torch.nn.Module":
    from diffusers import AutoencoderKL

    path = Path(vae)
    if not path.is_dir():
        path = resolve_repo(str(vae)) if looks_like_repo(str(vae)) else path
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


def _load_original_checkpoint(path: Path, vae: str | os.PathLike | None,
                              num_heads: int | None = None) -> DiverModels:
    """The original DiT state dict (e.g. DiT-XL-2-256x256.pt); a training checkpoint's 'ema' weights if present."""
    from diffusers import DiTTransformer2DModel

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        WeightsFile(path)                       # a damaged file is refused from its header
        sd = load_file(str(path))
    else:
        from .data import load_tensors

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
    if vae is None:
        vae = DEFAULT_VAE
    return checked_models(DiverModels(transformer, _load_vae(vae), dict(DIT_SCHEDULE), str(path)))


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


def checked_models(models: DiverModels) -> DiverModels:
    t, v = models.transformer.config, models.vae.config
    if v.latent_channels != t.in_channels:
        raise ModelError(f"the VAE makes {v.latent_channels}-channel latents but the DiT takes {t.in_channels}",
                         "pair the DiT with the VAE it was trained with")
    if not models.learned_sigma:
        raise ModelError(f"the DiT outputs {t.out_channels} channels, not 2 x {t.in_channels} (learned sigma)",
                         "DIVER's guidance needs a learned-sigma DiT such as DiT-XL/2")
    return models


def tie_embedders(transformer) -> int:
    """Share block 0's timestep/class embedder with every block. diffusers keeps one identical copy per block
    (28 in DiT-XL/2, 75 M parameters); the forward is unchanged. Returns the parameters saved (0 if the copies
    differ, e.g. after fine-tuning, in which case nothing is tied)."""
    blocks = transformer.transformer_blocks
    first = blocks[0].norm1.emb
    if first is None:
        return 0
    ref = first.state_dict()
    for block in blocks[1:]:
        other = block.norm1.emb
        if other is first:
            continue
        if other is None or any(not torch.equal(v, other.state_dict()[k]) for k, v in ref.items()):
            return 0
    saved = 0
    for block in blocks[1:]:
        if block.norm1.emb is not first:
            saved += sum(p.numel() for p in block.norm1.emb.parameters())
            block.norm1.emb = first
    return saved


def equalize_embedders(transformer) -> None:
    """Copy block 0's timestep/class embedder into every block, as a converted DiT checkpoint has them (a freshly
    built diffusers DiT draws each copy at random); afterwards `tie_embedders` can share them."""
    shared = transformer.transformer_blocks[0].norm1.emb.state_dict()
    for block in transformer.transformer_blocks[1:]:
        block.norm1.emb.load_state_dict(shared)


def untied_state_dict(module: "torch.nn.Module") -> dict[str, torch.Tensor]:
    """A state dict whose shared tensors are copies, as safetensors requires."""
    seen, out = set(), {}
    for k, v in module.state_dict().items():
        out[k] = v.clone() if v.data_ptr() in seen else v
        seen.add(v.data_ptr())
    return out


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


def build_tiny_models(seed: int = 0, num_classes: int = 1000, image_size: int = 32) -> DiverModels:
    """A 2-layer DiT and a small VAE of the same diffusers classes and latent layout as DiT-XL/2 + sd-vae
    (4-channel latent at image_size / 8, learned sigma), with random weights from `seed`."""
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=8, sample_size=image_size,
                        scaling_factor=SD_VAE_SCALING)
    transformer = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                        out_channels=8, num_layers=2, sample_size=image_size // 8, patch_size=2,
                                        num_embeds_ada_norm=num_classes, norm_num_groups=1)
    equalize_embedders(transformer)  # a real DiT has one embedder that diffusers copies into every block
    # eval(): in train mode diffusers' label embedder drops labels at random (CFG training dropout).
    return DiverModels(transformer.eval(), vae.eval(), dict(DIT_SCHEDULE), TINY_RANDOM)

