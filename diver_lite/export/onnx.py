"""Export of the graphs in export/graphs/ as ONNX, each validated against torch within its GraphSpec's tolerance,
and manifest.json."""

# Export of the graphs in export/graphs/ (the DiT, the DIVER guided step, the VAE encoder and decoder) as ONNX,
# each validated against torch within its GraphSpec's tolerance; manifest.json (manifest.py) names them, their
# shapes, the opset, the precision and the source model's hash. Opset 18, `torch.onnx.export(dynamo=True)`.

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from diver_lite.errors import (ExportError, GraphShapeError, GraphToleranceError, MissingDependencyError,
                               first_line)
from diver_lite.export.graph_spec import GraphSpec
from diver_lite.export.manifest import FORMAT, OPSET, PRECISIONS, STEP_PARAMS
from diver_lite.layouts.files import atomic_write, current_umask
from diver_lite.models.diver_models import DiverModels
from diver_lite.output_policy import MARK
from diver_lite.registry import discover

GRAPHS: dict[str, GraphSpec] = {spec.name: spec for spec in discover("diver_lite.export.graphs")}
TOLERANCE = GraphSpec.__dataclass_fields__["tolerance"].default_factory()   # the default, per precision


def model_hash(models: DiverModels) -> str:
    h = hashlib.sha256()
    for module in (models.transformer, models.vae):
        for k, v in module.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().float().cpu().numpy().tobytes()[:4096])  # a prefix of each tensor: fast on XL
            h.update(str(tuple(v.shape)).encode())
    return h.hexdigest()[:16]


def example_inputs(name: str, models: DiverModels, batch: int) -> tuple:
    """Random inputs of graph `name` at `batch` images (the DiT graph sees the CFG-doubled batch)."""
    return GRAPHS[name].example(models, batch)


def _symbolic_batch(path: Path, name: str) -> bool:
    """True when every batched input of the exported graph has a symbolic first dimension."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    batched = [i for i in model.graph.input if i.name not in GRAPHS[name].unbatched]
    return all(i.type.tensor_type.shape.dim[0].dim_param for i in batched)


def export_graph(name, module, example, path: Path, dynamic: bool) -> bool:
    """Export with a symbolic batch where the exporter allows it (checked in the graph: an example batch of 1, or
    chunk() on the doubled batch, silently fixes it); else with the example's fixed batch."""
    spec = GRAPHS[name]
    inputs, outputs = spec.inputs, spec.outputs
    batch = torch.export.Dim("batch", min=1, max=4096)
    # dit takes the doubled batch; its batch is a free symbol too.
    axes = spec.dynamic_axes()
    shapes = {n: ({0: batch} if n in axes else None) for n in inputs}
    kwargs = dict(dynamo=True, opset_version=OPSET, input_names=list(inputs), output_names=list(outputs),
                  external_data=True, verbose=False)
    with _quiet_exporter():
        return _export_or_fix_batch(module, example, path, dynamic, shapes, kwargs, name)


@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter logs and warns at length (missing torchvision ops, pytree deprecations, progress
    lines); diver-lite prints its own progress and reports real failures as ExportError."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export_or_fix_batch(module, example, path: Path, dynamic: bool, shapes, kwargs, name: str) -> bool:
    if dynamic:
        try:
            torch.onnx.export(module, example, str(path), dynamic_shapes=shapes, **kwargs)
            if _symbolic_batch(path, name):
                return True
            raise ValueError("batch dimension fixed by the exporter")
        except Exception:  # noqa: BLE001 - the exporter raises many types; fall back to a fixed batch
            for f in (path, path.with_name(path.name + ".data")):
                f.unlink(missing_ok=True)
    torch.onnx.export(module, example, str(path), **kwargs)
    return False


def validate_graph(path: Path, module, examples: list[tuple], precision: str = "fp32",
                   providers=("CPUExecutionProvider",), tolerance: dict | None = None) -> dict:
    """Run the graph in ONNX Runtime and torch on the same inputs; raise GraphToleranceError naming each output's
    largest difference when one exceeds the precision's tolerance (`tolerance`: the GraphSpec's; default
    graph_spec.TOLERANCE), GraphShapeError when a shape differs. Returns the largest differences."""
    import onnxruntime as ort

    atol, rtol = (tolerance or TOLERANCE)[precision]
    try:
        session = ort.InferenceSession(str(path), providers=list(providers))
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ExportError(f"{path.name} does not load in ONNX Runtime: {first_line(e, 200)}",
                          "re-export it; a corrupted or truncated graph cannot be used")
    names = [o.name for o in session.get_outputs()]
    worst = {}
    for example in examples:
        feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), example)}
        got = session.run(None, feed)
        with torch.no_grad():
            want = module(*example)
        want = (want,) if torch.is_tensor(want) else want
        for name, g, w in zip(names, got, want):
            w = w.float().numpy()
            if g.shape != w.shape:
                raise GraphShapeError(f"{path.name}: output {name} has shape {g.shape}, torch gives {w.shape}",
                                  "re-export; the batch dimension may have been fixed")
            diff = float(np.abs(g.astype(np.float32) - w).max())
            worst[name] = max(worst.get(name, 0.0), diff)
            if not np.allclose(g.astype(np.float32), w, atol=atol, rtol=rtol):
                raise GraphToleranceError(f"{path.name} differs from torch: " + ", ".join(
                    f"{k} max |diff| {v:.3g}" for k, v in worst.items()) + f" (tolerance atol {atol}, rtol {rtol})",
                    "re-export in fp32, or report the model and precision")
    return worst


def convert_graph(path: Path, precision: str) -> None:
    """fp32 graph -> fp16 (ONNX Runtime's converter, fp32 inputs/outputs kept) or int8 (dynamic quantization of
    MatMul/Gemm weights), in place."""
    import onnx

    tmp = path.with_name(path.stem + f".{precision}.onnx")
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        onnx.save(model, str(tmp), save_as_external_data=True, location=tmp.name + ".data")
    else:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                         use_external_data_format=True)
    for f in (path, path.with_name(path.name + ".data")):
        f.unlink(missing_ok=True)
    # Re-save under the final name so the external data file is named after the graph.
    model = onnx.load(str(tmp))
    onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    for f in (tmp, tmp.with_name(tmp.name + ".data")):
        f.unlink(missing_ok=True)


def export_models(models: DiverModels, out: str | os.PathLike, precision: str = "fp32",
                  graphs=tuple(GRAPHS), cfg_channels: int = 3,
                  sigma_scaling: bool = True, log=None, made_for: str | None = None, progress=None,
                  guidance_target: str = "x0") -> dict:
    """Export, convert and validate each graph into folder `out`; write manifest.json; return the manifest.
    `progress(done, name)` after each graph; `made_for`: the execution provider recorded in the manifest."""
    if not isinstance(models, DiverModels):
        raise ExportError(f"models is a {type(models).__name__}, not DiverModels",
                          "load them first: diver_lite.models.load.load_models(MODEL_FOLDER or hub id)")
    if not isinstance(out, (str, os.PathLike)):
        raise ExportError(f"out is a {type(out).__name__}, not a folder path", "pass the output folder as a path")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(e.name or "onnx", "ONNX export", 'pip install -e ".[onnx]"')
    from diver_lite.core.guidance import GUIDANCE_TARGETS

    if guidance_target not in GUIDANCE_TARGETS:
        raise ExportError(f"unknown guidance target {guidance_target!r}", f"use one of {', '.join(GUIDANCE_TARGETS)}")
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    unknown = sorted(set(graphs) - set(GRAPHS))
    if unknown or not graphs:
        raise ExportError(f"unknown graphs {unknown or list(graphs)}", f"choose from {', '.join(GRAPHS)}")
    log = log or (lambda msg: None)
    out = Path(out)
    # Graphs are written to a staging folder and moved into `out` at the end, manifest last: a run killed midway
    # leaves no half-written graph beside a manifest (check_output/mark: output_policy).
    stage = out / MARK / "staging"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    models.transformer.float().eval()
    models.vae.float().eval()
    manifest = {"format": FORMAT, "opset": OPSET, "precision": precision, "source_model": models.source,
                "source_hash": model_hash(models), "timestep_embedding": models.timestep_embedding,
                "image_size": models.image_size,
                "latent_channels": models.latent_channels, "latent_size": models.latent_size,
                "scaling_factor": models.scaling_factor, "num_classes": models.num_classes,
                "null_class": models.null_class, "schedule": models.schedule, "cfg_channels": cfg_channels,
                "sigma_scaling": sigma_scaling, "guidance_target": guidance_target, "step_params": list(STEP_PARAMS),
                "made_for": made_for, "graphs": {}}
    for k, name in enumerate(graphs):
        start = time.perf_counter()
        log(f"[{k + 1}/{len(graphs)}] exporting {name} ...")
        spec = GRAPHS[name]
        module = spec.module(models, cfg_channels, sigma_scaling, guidance_target).eval()
        path = stage / f"{name}.onnx"
        ex1, ex3 = example_inputs(name, models, 1), example_inputs(name, models, 3)
        try:
            dynamic = export_graph(name, module, ex3, path, dynamic=True)  # batch 3: no 0/1 specialisation
        except Exception as e:  # noqa: BLE001
            raise ExportError(f"torch.onnx.export failed for {name}: {first_line(e, 300)}",
                              "check the torch and onnxscript versions (pip install -e \".[onnx]\")")
        graph_precision = spec.precision_for(precision)
        if graph_precision != "fp32":
            log(f"      converting {name} to {graph_precision} ...")
            convert_graph(path, graph_precision)
        examples = [ex1, ex3] if dynamic else [ex3]
        worst = validate_graph(path, module, examples, graph_precision, tolerance=spec.tolerance)
        manifest["graphs"][name] = {
            "file": path.name, "inputs": list(spec.inputs), "outputs": list(spec.outputs),
            "dynamic_batch": dynamic, "precision": graph_precision,
            **({"contract": spec.contract} if spec.contract else {}),
            "fixed_batch": None if dynamic else int(examples[0][0].shape[0]),
            "max_abs_diff_vs_torch": {k: float(f"{v:.3g}") for k, v in worst.items()},
            "export_seconds": round(time.perf_counter() - start, 1)}
        log(f"      {name}: dynamic batch {dynamic}, max |diff| vs torch "
            + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))
        if progress:
            progress(k + 1, name)
    (out / "manifest.json").unlink(missing_ok=True)        # an earlier export stops being one first
    for f in sorted(stage.iterdir()):
        os.chmod(f, 0o666 & ~current_umask())   # onnx writes external data as 0600; a graph follows the umask
        os.replace(f, out / f.name)
    stage.rmdir()
    atomic_write(out / "manifest.json", lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2)))
    return manifest
