"""Which settings a `recover` command line runs: the preset table (the paper's for any model, the embedded
prior's own for it), a --config file's values over the table's, the options written on the line over both, and an
exported guided step's guidance target when none was asked for."""

import json
from pathlib import Path

from diver_lite.core.config import RecoverConfig
from diver_lite.models.source import is_embedded_prior


def resolve_config(on_line: dict, in_file: dict, method: str | None, ipc: int, presets: str, model, backend: str,
                   onnx_dir: Path | None, onnx_graph: str, batch_size: int = 4) -> RecoverConfig:
    """The one place where the layers meet: RecoverConfig fields given on the command line (`on_line`) win over
    those of a --config file (`in_file`), both over the preset table's values for `method` and `ipc`, and all over
    the dataclass defaults. Without a --guidance-target anywhere, an exported guided step runs its own."""
    manifest = _manifest(onnx_dir) if backend == "onnxruntime" else {}
    table = presets if presets != "auto" else "fashion-mnist" if _embedded(model, manifest) else "paper"
    values = {**in_file, **on_line, "batch_size": batch_size}
    if method is not None or table == "paper":
        config = RecoverConfig.from_preset(method, ipc, table, **values)
    else:
        config = RecoverConfig(**values)
    if onnx_graph == "guided_step" and "guidance_target" not in values and manifest:
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
