"""Export of the DiT, the DIVER guided step and the VAE as ONNX graphs, each validated against torch.

Graphs (opset 18, `torch.onnx.export(dynamo=True)`; opset 17 gave a Split that ONNX Runtime rejects):
  dit.onnx           (x, timestep, class_labels) -> model_output. Dynamic batch. What `--backend onnxruntime`
                     runs: the same sampler as torch drives it, with CFG on the doubled batch (one copy of the
                     DIVER logic).
  guided_step.onnx   (x, timestep, class_labels, z_inh, step_params) -> (x_prev, x0_pred): one whole DIVER DDIM
                     step, CFG and semantic guidance folded in, for runtimes that loop over one graph.
  vae_encoder.onnx   image in [-1, 1] -> (posterior mean, std);  vae_decoder.onnx  latent / scaling -> image.
A manifest.json names the graphs, shapes, opset, precision and the source model's hash.
"""

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
from types import SimpleNamespace

import numpy as np
import torch

from diver_lite.data import atomic_write
from diver_lite.errors import ExportError, MissingDependencyError, first_line
from diver_lite.guidance import cfg_combine, ddim_update, learned_sigma, predict_x0, semantic_guidance
from diver_lite.models import DiverModels
from diver_lite.output_policy import MARK

OPSET = 18
FORMAT = "diver-lite-onnx/1"
PRECISIONS = ("fp32", "fp16", "int8")
# step_params of guided_step.onnx, in this order (float32 [6]).
# What a caller of a graph must know beyond its inputs' names (written into manifest.json).
CONTRACTS = {"guided_step": {"contract": (
    "One DIVER DDIM step: CFG on [x; x] with labels [class_labels; null], x0_pred, the DDIM update and the semantic "
    "guidance. Under label_phase=concrete an unconditional step passes the null class as class_labels (both CFG "
    "halves are then the unconditional output) and step_params' guidance lambda_i is 0 there.")}}
STEP_PARAMS = ("alpha_bar", "alpha_bar_prev", "log_beta", "log_posterior_var", "guidance", "cfg_scale")
# Tolerances of the validation against torch fp32, per precision: (atol, rtol) on each output.
TOLERANCE = {"fp32": (1e-3, 1e-3), "fp16": (5e-2, 5e-2), "int8": (2e-1, 2e-1)}


class DiTGraph(torch.nn.Module):
    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, x, timestep, class_labels):
        return self.transformer(x, timestep=timestep, class_labels=class_labels).sample   # [B, 2C, h, w]


class GuidedStepGraph(torch.nn.Module):
    """One DIVER DDIM step on the doubled batch [x; x] with labels [y; null]: the same guidance.py functions the
    sampler calls, traced with the step's numbers as graph inputs."""

    def __init__(self, transformer, null_class: int, cfg_channels: int, sigma_scaling: bool):
        super().__init__()
        self.transformer, self.null_class = transformer, null_class
        self.cfg_channels, self.sigma_scaling = cfg_channels, sigma_scaling

    def forward(self, x, timestep, class_labels, z_inh, step_params):
        B, C = x.shape[0], x.shape[1]
        p = SimpleNamespace(**{name: step_params[k] for k, name in enumerate(STEP_PARAMS)})
        null = torch.full_like(class_labels, self.null_class)
        out = self.transformer(torch.cat([x, x]), timestep=timestep.expand(2 * B),
                               class_labels=torch.cat([class_labels, null])).sample
        out = cfg_combine(out[:B], out[B:], p.cfg_scale, self.cfg_channels)     # slice by B: symbolic batch
        eps, v = out[:, :C], out[:, C:]
        x0_pred = predict_x0(x, eps, p)
        x_prev = semantic_guidance(ddim_update(x0_pred, eps, p), x0_pred, z_inh, learned_sigma(v, p), p,
                                   self.sigma_scaling)
        return x_prev, x0_pred


class VAEEncoderGraph(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, image):
        dist = self.vae.encode(image).latent_dist
        return dist.mean, dist.std


class VAEDecoderGraph(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent):
        return self.vae.decode(latent).sample


def step_params_array(p) -> np.ndarray:
    """A StepParams as guided_step.onnx's step_params input."""
    return np.array([getattr(p, name) for name in STEP_PARAMS], dtype=np.float32)


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
    g = torch.Generator().manual_seed(batch)
    C, h = models.latent_channels, models.latent_size
    x = torch.randn(batch, C, h, h, generator=g)
    labels = torch.randint(0, models.num_classes, (batch,), generator=g)
    if name == "dit":
        return torch.cat([x, x]), torch.full((2 * batch,), 500), torch.cat([labels, torch.full_like(labels, 1)])
    if name == "guided_step":
        return (x, torch.tensor([500]), labels, torch.randn(batch, C, h, h, generator=g),
                torch.tensor([0.3, 0.35, -4.0, -4.2, 0.5, 4.0]))
    if name == "vae_encoder":
        return (torch.rand(batch, 3, models.image_size, models.image_size, generator=g) * 2 - 1,)
    return (x,)


SPECS = {  # graph: (input names, output names)
    "dit": (("x", "timestep", "class_labels"), ("model_output",)),
    "guided_step": (("x", "timestep", "class_labels", "z_inh", "step_params"), ("x_prev", "x0_pred")),
    "vae_encoder": (("image",), ("mean", "std")),
    "vae_decoder": (("latent",), ("image",)),
}


def _module(name: str, models: DiverModels, cfg_channels: int, sigma_scaling: bool) -> torch.nn.Module:
    if name == "dit":
        return DiTGraph(models.transformer)
    if name == "guided_step":
        return GuidedStepGraph(models.transformer, models.null_class, cfg_channels, sigma_scaling)
    return (VAEEncoderGraph if name == "vae_encoder" else VAEDecoderGraph)(models.vae)


def _symbolic_batch(path: Path, name: str) -> bool:
    """True when every batched input of the exported graph has a symbolic first dimension."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    batched = [i for i in model.graph.input if i.name not in ("step_params",)
               and not (name == "guided_step" and i.name == "timestep")]
    return all(i.type.tensor_type.shape.dim[0].dim_param for i in batched)


def export_graph(name, module, example, path: Path, dynamic: bool) -> bool:
    """Export with a symbolic batch where the exporter allows it (checked in the graph: an example batch of 1, or
    chunk() on the doubled batch, silently fixes it); else with the example's fixed batch."""
    inputs, outputs = SPECS[name]
    batch = torch.export.Dim("batch", min=1, max=4096)
    # dit takes the doubled batch; its batch is a free symbol too.
    shapes = {n: ({0: batch} if n != "step_params" and not (name == "guided_step" and n == "timestep") else None)
              for n in inputs}
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
                   providers=("CPUExecutionProvider",)) -> dict:
    """Run the graph in ONNX Runtime and torch on the same inputs; raise ExportError naming each output's
    largest difference when one exceeds the precision's tolerance. Returns the largest differences."""
    import onnxruntime as ort

    atol, rtol = TOLERANCE[precision]
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
                raise ExportError(f"{path.name}: output {name} has shape {g.shape}, torch gives {w.shape}",
                                  "re-export; the batch dimension may have been fixed")
            diff = float(np.abs(g.astype(np.float32) - w).max())
            worst[name] = max(worst.get(name, 0.0), diff)
            if not np.allclose(g.astype(np.float32), w, atol=atol, rtol=rtol):
                raise ExportError(f"{path.name} differs from torch: " + ", ".join(
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
                  graphs=("dit", "guided_step", "vae_encoder", "vae_decoder"), cfg_channels: int = 3,
                  sigma_scaling: bool = True, log=None) -> dict:
    """Export, convert and validate each graph into folder `out`; write manifest.json; return the manifest."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(e.name or "onnx", "ONNX export", 'pip install -e ".[onnx]"')
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
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
                "sigma_scaling": sigma_scaling, "step_params": list(STEP_PARAMS), "graphs": {}}
    for k, name in enumerate(graphs):
        start = time.perf_counter()
        log(f"[{k + 1}/{len(graphs)}] exporting {name} ...")
        module = _module(name, models, cfg_channels, sigma_scaling).eval()
        path = stage / f"{name}.onnx"
        ex1, ex3 = example_inputs(name, models, 1), example_inputs(name, models, 3)
        try:
            dynamic = export_graph(name, module, ex3, path, dynamic=True)  # batch 3: no 0/1 specialisation
        except Exception as e:  # noqa: BLE001
            raise ExportError(f"torch.onnx.export failed for {name}: {first_line(e, 300)}",
                              "check the torch and onnxscript versions (pip install -e \".[onnx]\")")
        # The VAE keeps fp32: its convolutions are a small share of the time and fp16 overflows in the decoder.
        graph_precision = precision if name in ("dit", "guided_step") else "fp32"
        if graph_precision != "fp32":
            log(f"      converting {name} to {graph_precision} ...")
            convert_graph(path, graph_precision)
        examples = [ex1, ex3] if dynamic else [ex3]
        worst = validate_graph(path, module, examples, graph_precision)
        manifest["graphs"][name] = {
            "file": path.name, "inputs": list(SPECS[name][0]), "outputs": list(SPECS[name][1]),
            "dynamic_batch": dynamic, "precision": graph_precision, **CONTRACTS.get(name, {}),
            "fixed_batch": None if dynamic else int(examples[0][0].shape[0]),
            "max_abs_diff_vs_torch": {k: float(f"{v:.3g}") for k, v in worst.items()},
            "export_seconds": round(time.perf_counter() - start, 1)}
        log(f"      {name}: dynamic batch {dynamic}, max |diff| vs torch "
            + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))
    (out / "manifest.json").unlink(missing_ok=True)        # an earlier export stops being one first
    for f in sorted(stage.iterdir()):
        os.replace(f, out / f.name)
    stage.rmdir()
    atomic_write(out / "manifest.json", lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2)))
    return manifest
