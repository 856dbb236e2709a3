"""ONNX Runtime's execution providers: the names users type, the ones installed, and the graph precision each runs
best (what `diver-lite export --provider` exports and `recover` checks)."""

from diver_lite.errors import ConfigError, MissingDependencyError

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
TENSORRT, DML, COREML = "TensorrtExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider"
OPENVINO, ROCM, MIGRAPHX = "OpenVINOExecutionProvider", "ROCMExecutionProvider", "MIGraphXExecutionProvider"


def onnxruntime_module():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "--backend onnxruntime",
                                     'pip install -e ".[onnx]" (or ".[onnx-gpu]" for CUDA; not both)')
    return onnxruntime


# Short names users type for ONNX Runtime's execution providers.
PROVIDER_NAMES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "directml": DML, "dml": DML, "coreml": COREML,
                  "openvino": OPENVINO, "rocm": ROCM, "migraphx": MIGRAPHX}
# The DiT graphs' precision each provider runs best. int8 is dynamic quantization (MatMulInteger), made for the CPU
# provider; GPUs and Apple's Neural Engine run fp16 on their matrix units (Core ML runs ML programs in float16 by
# default); OpenVINO picks its own inference precision per device from an fp32 graph.
PREFERRED_PRECISION = {CPU: "int8", CUDA: "fp16", TENSORRT: "fp16", DML: "fp16", COREML: "fp16", ROCM: "fp16",
                       MIGRAPHX: "fp16", OPENVINO: "fp32"}


def named_providers(names: str) -> list[str]:
    """'tensorrt,cuda' -> ONNX Runtime provider names in that order of preference, CPU appended as the last
    resort; each must be in this onnxruntime build (else one line naming what is installed)."""
    available = onnxruntime_module().get_available_providers()
    chosen = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        full = PROVIDER_NAMES.get(name.lower(), name)
        if full not in available:
            raise ConfigError(f"ONNX Runtime provider {name!r} ({full}) is not in this onnxruntime; it has "
                              f"{', '.join(available)}", "install the onnxruntime build for it (onnxruntime-gpu, "
                              "onnxruntime-directml, onnxruntime-openvino, ...) or pick one of those")
        chosen.append(full)
    if not chosen:
        raise ConfigError("--provider is empty", "e.g. --provider cuda or --provider tensorrt,cuda")
    return chosen + ([CPU] if CPU not in chosen else [])


def providers_for(device: str) -> list[str]:
    """auto: CUDA when this onnxruntime has it, else CPU. cuda: CUDA or a loud failure. cpu: CPU."""
    available = onnxruntime_module().get_available_providers()
    if device == "cpu":
        return [CPU]
    if device.startswith("cuda"):
        if CUDA not in available:
            raise ConfigError(f"--device {device} needs onnxruntime's CUDA provider; this onnxruntime has "
                              f"{', '.join(available)}", 'install the GPU build: pip install -e ".[onnx-gpu]" '
                              "(uninstall onnxruntime first) with CUDA 12 and cuDNN 9 libraries")
        return [CUDA, CPU]
    if device != "auto":
        raise ConfigError(f"unknown device {device!r}", "use auto, cpu or cuda")
    return [CUDA, CPU] if CUDA in available else [CPU]


def full_name(name: str) -> str:
    """'cuda' -> 'CUDAExecutionProvider'; a full name (…ExecutionProvider) stays as it is; anything else (a typo
    such as 'cdua') is refused rather than recorded."""
    key = name.strip()
    if key.lower() in PROVIDER_NAMES:
        return PROVIDER_NAMES[key.lower()]
    if key.endswith("ExecutionProvider") and key[:-len("ExecutionProvider")].isalnum():
        return key
    from diver_lite.errors import ConfigError

    raise ConfigError(f"unknown ONNX Runtime provider {name!r}",
                      f"use one of {', '.join(sorted(PROVIDER_NAMES))}, or a full name such as CUDAExecutionProvider")


def preferred_precision(provider: str) -> str:
    """The export precision for a provider (a short or full name); fp32 for one not in the table."""
    return PREFERRED_PRECISION.get(full_name(provider), "fp32")


def precision_advice(precision: str, provider: str) -> str | None:
    """A warning when graphs of `precision` run on `provider` in a way that wastes it: int8 (dynamic quantization)
    on a GPU or NPU provider, fp16 on the CPU (most CPU kernels have no fp16: casts around every op)."""
    short = next((k for k, v in PROVIDER_NAMES.items() if v == provider), provider)
    if precision == "int8" and provider != CPU:
        return (f"the DiT graphs are int8 (dynamic quantization, made for the CPU provider) but run on {provider}: "
                f"re-export with `diver-lite export --provider {short}` ({preferred_precision(provider)} graphs)")
    if precision == "fp16" and provider == CPU:
        return ("the DiT graphs are fp16 but run on the CPU provider, which computes most fp16 ops through casts: "
                "re-export with `diver-lite export --provider cpu` (int8) or --precision fp32")
    return None
