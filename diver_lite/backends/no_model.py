"""The backend of a control that needs no model (core/controls.py: projection): nothing is loaded, nothing runs
on a device; it only answers what the pipeline asks of every backend."""

import numpy as np


class NoModelBackend:
    name = "none"
    image_size = latent_channels = latent_size = 0
    scaling_factor = 1.0
    source = "none"
    warnings: list = []
    runtime = guided_step = None
    # DiT's training schedule, so that a run's schedule can still be built (and recorded) as for any backend.
    schedule = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear"}

    def __init__(self, num_classes: int, batch_size: int = 1):
        self.num_classes, self.null_class, self.batch_size = num_classes, num_classes, batch_size

    def asarray(self, x):
        return x

    def numpy(self, x) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def synchronize(self) -> None:
        pass

    def describe(self) -> dict:
        return {"source": "none (a control that needs no model)", "image_size": None, "latent": None}

    def device_name(self) -> str:
        return "none"

    def provider(self) -> str:
        return "none"

    def peak_memory(self) -> dict:
        return {}

    def check_config(self, config) -> None:
        pass
