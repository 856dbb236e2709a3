"""The engine of a run: the device, and the backend built from an EngineSpec (the torch runtime under a plan, the
plan chosen from a budget when one is given, or ONNX Runtime over an exported folder)."""

import os
from collections.abc import Callable
from dataclasses import dataclass

from diver_lite.errors import ConfigError
from diver_lite.export.manifest import STEP_GRAPHS as ONNX_GRAPHS   # what --backend onnxruntime calls per step
from diver_lite.options import option

BACKENDS = ("torch", "onnxruntime")
ORT_SESSIONS = ("lean", "resident")
MODEL_FIELDS = ("model", "vae", "timestep_embedding")    # what every command that loads a model takes
# What recover takes besides (the plan's own options come from the memory tactics, cli/runtime_options.py).
RUN_ENGINE_FIELDS = ("backend", "device", "onnx_dir", "onnx_graph", "provider", "ort_sessions")


@dataclass(frozen=True)
class EngineSpec:
    """What runs the networks. `model`/`vae`: what models.source.resolve_source takes (or loaded DiverModels);
    `plan`: a memory.plan.RuntimePlan (None: `precision` alone); `budget_gb`: the fastest plan whose estimate fits
    this much device memory (RAM on the CPU) instead; `budget_for`: the device type the budget was given for.
    `timestep_embedding`: "dit"/"diffusers" overrides what the model records. ONNX Runtime: `onnx_dir`, its
    `onnx_graph` (dit or guided_step) and `provider` names."""

    backend: str = option("torch", "torch, or ONNX Runtime over graphs from `diver-lite export` (with --onnx).",
                          choices=BACKENDS, section="Model and backend",
                          shown_default="onnxruntime when --onnx is given, else torch")
    model: object = option(None, "Diffusers DiT folder, original DiT .pt, repo id (downloaded once, then cached; "
                           "HF_HUB_OFFLINE=1: the cache only), or tiny-random (random weights).",
                           section="Model and backend", shown_default="the embedded Fashion-MNIST prior")
    vae: str | os.PathLike | None = option(None, "AutoencoderKL folder or repo id (with an original .pt; default "
                                           "there: stabilityai/sd-vae-ft-mse).", section="Model and backend",
                                           shown_default="the model folder's vae/")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps (Apple silicon: fp16/bf16).",
                         section="Model and backend")
    precision: str = "fp32"
    plan: object = None
    budget_gb: float | str | None = None      # GB, or "auto": the device's free memory (memory.budget)
    budget_for: str | None = None
    auto_batch: bool = False                  # the largest batch that fits the budget (auto when none is given)
    timestep_embedding: str | None = option(None, "Timestep frequencies the DiT's weights were trained with: dit "
                                            "(Meta's DiT-XL/2: /128) or diffusers (/127).",
                                            choices=("dit", "diffusers"), section="Model and backend",
                                            shown_default="what the model folder records; none recorded: dit")
    onnx_dir: str | os.PathLike | None = option(None, "Folder written by `diver-lite export`, for --backend "
                                                "onnxruntime.", flag="--onnx", section="Model and backend",
                                                metavar="PATH")
    onnx_graph: str = option("dit", "With --backend onnxruntime: dit (the sampler calls the DiT) or guided_step (one "
                             "exported DIVER DDIM step per call: the deployed guided denoiser; DDIM only).",
                             choices=ONNX_GRAPHS, section="Model and backend")
    provider: str | None = option(None, "ONNX Runtime execution providers in order of preference (cpu, cuda, "
                                  "tensorrt, directml, coreml, openvino, or full names); each must be installed.",
                                  metavar="NAME[,NAME]", section="Model and backend", shown_default="from --device")
    ort_sessions: str = option("lean", "With --backend onnxruntime: lean holds one graph at a time (encoder, DiT, "
                               "decoder: the peak is the largest graph's, the DiT loads once per batch); resident "
                               "holds all three.", choices=ORT_SESSIONS, section="Model and backend")

    def __post_init__(self):
        """The same one-line errors from Python as from the command line, before anything loads or is written."""
        import math

        from diver_lite.errors import ConfigError

        def need(ok: bool, what: str, fix: str):
            if not ok:
                raise ConfigError(what, fix)

        need(self.backend in BACKENDS, f"backend={self.backend!r}", "use 'torch' or 'onnxruntime'")
        need(self.model is None or isinstance(self.model, (str, os.PathLike)) or hasattr(self.model, "transformer"),
             f"model={self.model!r} is not a model", "give a folder, a checkpoint path, a repo id, 'tiny-random' or "
             "loaded DiverModels")
        for name in ("vae", "onnx_dir"):
            value = getattr(self, name)
            need(value is None or isinstance(value, (str, os.PathLike)), f"{name}={value!r} is not a path",
                 "give a folder path")
        need(self.backend == "onnxruntime" or self.onnx_dir is None, "onnx_dir is read by the onnxruntime backend, "
             "not by torch", "drop --backend torch to run the graphs (or drop --onnx)")
        need(isinstance(self.device, str), f"device={self.device!r}", "use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        need(self.onnx_graph in ONNX_GRAPHS, f"onnx_graph={self.onnx_graph!r}", f"use {' or '.join(ONNX_GRAPHS)}")
        need(self.ort_sessions in ORT_SESSIONS, f"ort_sessions={self.ort_sessions!r}", "use lean or resident")
        if self.budget_gb is not None and self.budget_gb != "auto":
            ok = isinstance(self.budget_gb, (int, float)) and not isinstance(self.budget_gb, bool) and \
                math.isfinite(self.budget_gb) and self.budget_gb > 0
            need(ok, f"budget_gb={self.budget_gb!r} is not a positive number of GB", "e.g. 4, 1.5 or 'auto'")


def resolve_device(device: str):
    import torch

    if device == "auto":   # MPS (Apple silicon) only when asked for: --device mps
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}", "use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA device",
                          "use --device cpu, or install a CUDA build of torch")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps needs Apple silicon and a torch build with MPS", "use --device cpu")
    return dev


def build_engine(spec: EngineSpec, cfg_channels: int = 3, batch_size: int = 1,
                 log: Callable[[str], None] | None = None, max_batch: int = 256, opened=None):
    """The backend (backends/base.py) that `spec` describes, for batches of `batch_size` images (with
    `spec.auto_batch`: the largest up to `max_batch` that fits, as `backend.batch_size`). The model source is
    opened once (models/open.py; `opened`: already opened by the caller, e.g. to size a plan on) and handed to the
    memory runtime, which places it."""
    if spec.backend == "onnxruntime":
        return _ort_engine(spec, cfg_channels)
    if spec.provider is not None:
        raise ConfigError("--provider chooses ONNX Runtime's execution providers", "use it with --backend onnxruntime")
    from diver_lite.backends.torch_backend import TorchBackend
    from diver_lite.memory.plan import RuntimePlan
    from diver_lite.memory.runtime import build_runtime, torch_dtype
    from diver_lite.models.open import open_models

    dev = resolve_device(spec.device)
    plan, batch = spec.plan or RuntimePlan(spec.precision), batch_size
    sized = spec.budget_gb is not None or spec.auto_batch
    if sized and spec.budget_for is not None and spec.budget_for != dev.type:
        flag = {"cuda": "--vram-budget", "cpu": "--ram-budget"}
        raise ConfigError(f"{flag[spec.budget_for]} was given but the run is on {dev.type}",
                          f"use {flag[dev.type]}, or --device {spec.budget_for}")
    # Read in the plan's dtype when the plan is known before sizing (a source loaded whole; safetensors are not read
    # here), in fp32 when a budget chooses the plan.
    opened = opened or open_models(spec.model, spec.vae, spec.timestep_embedding,
                                   dtype=torch_dtype(RuntimePlan() if sized else plan, dev.type))
    if sized:
        plan, batch = _plan_for_budget(spec, opened, dev, plan, batch_size, log, max_batch)
    runtime = build_runtime(opened, dev, plan)
    backend = TorchBackend(runtime.models, cfg_channels, runtime.placement, dev, runtime)
    backend.batch_size = batch          # what the run uses (chosen when auto_batch)
    return backend


def _plan_for_budget(spec, opened, dev, plan, batch_size, log, max_batch):
    """(plan, batch): the fastest plan whose estimate fits the budget, and with auto_batch the largest batch."""
    from diver_lite.machine import current_rss_bytes
    from diver_lite.memory.budget import auto_budget_gb, largest_batch, plan_for_budget
    from diver_lite.memory.runtime import sizes_of

    sizes, batch = sizes_of(opened), batch_size
    given = spec.budget_gb if spec.budget_gb is not None else "auto"
    budget = auto_budget_gb(dev) if given == "auto" else given
    what = f"{budget:.2f} GB (auto)" if given == "auto" else f"{budget:g} GB"
    if spec.budget_gb is not None:
        plan, estimate = plan_for_budget(sizes, dev.type, budget, 1 if spec.auto_batch else batch_size)
    if spec.auto_batch:
        runtime = current_rss_bytes() if dev.type == "cpu" else 0
        batch, plan, estimate = largest_batch(plan, sizes, dev.type, int(budget * 2**30), runtime, max_batch)
    if log:
        log(f"memory plan for {what}: {plan.label}" + (f", batch {batch}" if spec.auto_batch else "")
            + f" (estimated peak {estimate['total'] / 2**30:.2f} GB)")
    return plan, batch


def _ort_engine(spec: EngineSpec, cfg_channels: int):
    if spec.onnx_dir is None:
        raise ConfigError("--backend onnxruntime needs the exported graphs", "pass --onnx DIR (diver-lite export)")
    if spec.auto_batch:
        raise ConfigError("--batch-size auto sizes batches from the torch backend's memory estimate",
                          "give --batch-size N with --backend onnxruntime")
    if spec.timestep_embedding is not None:
        raise ConfigError("--timestep-embedding applies to the torch backend",
                          "an ONNX graph computes the convention it was exported with (diver-lite export "
                          "--timestep-embedding)")
    from diver_lite.backends.ort import OrtBackend

    return OrtBackend(spec.onnx_dir, device=spec.device, cfg_channels=cfg_channels, graph=spec.onnx_graph,
                      provider=spec.provider, sessions=spec.ort_sessions)


def memory_now(engine) -> tuple[float, str]:
    """(MB, kind): GPU memory allocated on CUDA, else the process's resident memory."""
    if engine.name == "torch" and engine.device.type == "cuda":
        import torch

        return torch.cuda.memory_allocated(engine.device) / 2**20, "GPU"
    from diver_lite.pipeline.report import current_rss_bytes

    return current_rss_bytes() / 2**20, "RSS"


def plan_label(engine) -> str:
    """The runtime plan's label (torch) or the ONNX graph and precision."""
    runtime = engine.runtime
    if runtime is not None:
        return runtime.plan.label
    describe = engine.describe()
    return f"{describe.get('graph', 'dit')} {describe.get('precision', '')}".strip()


def numerics(engine) -> str | None:
    """The label of the runtime plan without what leaves the numbers as they are (memory tactics marked exact):
    an interrupted run may be resumed under a smaller plan; precision and VAE tiling change the result."""
    runtime = engine.runtime
    return None if runtime is None else runtime.plan.numerics().label
