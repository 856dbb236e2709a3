"""diver-lite: DIVER's semantic recovery of distilled datasets with a diffusion transformer."""

__version__ = "0.1.0"

from diver_lite.core.config import METHOD_PRESETS, RecoverConfig  # noqa: E402
from diver_lite.errors import ConfigError, DiverLiteError, InputError, ModelError, OutputError  # noqa: E402

__all__ = ["recover", "RecoverConfig", "EngineSpec", "RunOptions", "RuntimePlan", "load_models", "export_models",
           "profile", "METHOD_PRESETS",
           "DiverLiteError", "ConfigError", "InputError", "ModelError", "OutputError", "__version__"]

# The Python API, the same functions the CLI calls; imported on first use (torch and diffusers are heavy).
_LAZY = {"recover": ("pipeline.run", "recover"), "load_models": ("models.load", "load_models"),
         "export_models": ("export.onnx", "export_models"), "profile": ("profiling.profile", "profile"),
         "EngineSpec": ("pipeline.engine", "EngineSpec"), "RunOptions": ("pipeline.run", "RunOptions"),
         "RuntimePlan": ("memory.plan", "RuntimePlan")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
