"""diver-lite: DIVER's semantic recovery of distilled datasets with a diffusion transformer."""

__version__ = "0.1.0"

from .config import METHOD_PRESETS, RecoverConfig  # noqa: E402
from .errors import ConfigError, DiverLiteError, InputError, ModelError, OutputError  # noqa: E402

__all__ = ["RecoverConfig", "METHOD_PRESETS", "DiverLiteError", "ConfigError", "InputError", "ModelError",
           "OutputError", "__version__"]
