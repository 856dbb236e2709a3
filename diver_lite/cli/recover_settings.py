"""Which settings a `recover` command line runs: the preset table (the paper's for any model, the embedded
prior's own for it), the options written on the line over the table's values, and an exported guided step's
guidance target when none was asked for."""

import json
from pathlib import Path

import click

from diver_lite.core.config import RecoverConfig
from diver_lite.models.source import is_embedded_prior

# RecoverConfig fields whose option has another name (for "was it given on the command line?").
_PARAM = {"num_sampling_steps": "sampling_steps", "sigma_scaling": "no_sigma_scaling"}


def resolve_config(options: dict, method: str | None, ipc: int, presets: str, model, backend: str,
                   onnx_dir: Path | None, onnx_graph: str) -> RecoverConfig:
    """`options`: RecoverConfig fields from the command line (defaults included); the table's values win over
    the defaults, the options written on the line over the table."""
    manifest = _manifest(onnx_dir) if backend == "onnxruntime" else {}
    table = presets if presets != "auto" else "fashion-mnist" if _embedded(model, manifest) else "paper"
    source = click.get_current_context().get_parameter_source
    if method is not None or table == "paper":
        preset = RecoverConfig.preset_values(method, ipc, table)
        options = {k: v for k, v in options.items()
                   if k not in preset or source(_PARAM.get(k, k)) is not click.core.ParameterSource.DEFAULT}
        config = RecoverConfig.from_preset(method, ipc, table, **options)
    else:
        config = RecoverConfig(**options)
    if onnx_graph == "guided_step" and source("guidance_target") is click.core.ParameterSource.DEFAULT and manifest:
        # what the graph was exported with (a manifest from before the option: x0)
        config = config.replace(guidance_target=manifest.get("guidance_target", "x0"))
    return config


def _manifest(onnx_dir: Path | None) -> dict:
    """An export's manifest.json, or {} (the ONNX backend reports a missing or damaged one itself)."""
    try:
        manifest = json.loads((Path(onnx_dir) / "manifest.json").read_text()) if onnx_dir is not None else {}
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _embedded(model, manifest: dict) -> bool:
    """Does the run use the embedded Fashion-MNIST prior (as the model, or as the source of the ONNX graphs)?"""
    if manifest:            # ONNX graphs: the model they were exported from
        source = manifest.get("source_model", model)
        return source is not None and is_embedded_prior(source)
    return is_embedded_prior(model)
