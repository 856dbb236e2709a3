"""The Backend protocol: where the networks run, on its own array type (torch tensors on a device, or numpy arrays
for ONNX Runtime). core.recovery and the sampler see only this."""

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    name: str                      # "torch" | "onnxruntime"
    image_size: int
    latent_channels: int
    latent_size: int
    scaling_factor: float
    null_class: int                # the CFG null label
    num_classes: int
    schedule: dict                 # DiT's training schedule (core.schedule)
    source: str                    # what the weights are, for reports and resume checks
    warnings: list                 # said once when the run starts, kept in the report
    runtime: Any                   # the torch memory runtime (plan, int8 layers), or None
    guided_step: Any               # one whole exported DIVER step (ONNX Runtime's guided_step.onnx), or None

    def asarray(self, x: np.ndarray) -> Any:
        """numpy -> the backend's array."""

    def numpy(self, x: Any) -> np.ndarray:
        """The backend's array -> numpy float32."""

    def encode(self, x: np.ndarray) -> tuple[Any, Any]:
        """Images [B, 3, S, S] in [-1, 1] -> the VAE posterior's (mean, std), unscaled."""

    def decode(self, z: Any) -> np.ndarray:
        """Unscaled latents -> images [B, 3, S, S]."""

    def denoiser(self, x: Any, timestep: int, class_labels: Any, cfg_scale: float) -> Any:
        """The sampler's call (core/sampler.py): CFG-combined eps and the learned variance values."""

    def synchronize(self) -> None: ...

    def describe(self) -> dict: ...

    def device_name(self) -> str: ...

    def provider(self) -> str: ...

    def peak_memory(self) -> dict: ...

    def check_config(self, config) -> None:
        """Refuse (ConfigError) settings this backend cannot run, before any work."""
