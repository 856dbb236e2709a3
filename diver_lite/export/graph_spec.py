"""The protocol of an exported graph (export/graphs/), in optimum-onnx's style: its inputs and outputs, which
axes are the batch, the precisions it is converted to, the tolerance of its validation against torch, and how to
build its torch module and example inputs."""

from collections.abc import Callable
from dataclasses import dataclass, field

# (atol, rtol) on each output, against torch fp32, per precision.
TOLERANCE = {"fp32": (1e-3, 1e-3), "fp16": (5e-2, 5e-2), "int8": (2e-1, 2e-1)}


@dataclass(frozen=True)
class GraphSpec:
    name: str                                # the file is NAME.onnx
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # module(models, cfg_channels, sigma_scaling, guidance_target) -> the torch.nn.Module exported
    module: Callable
    # example(models, batch) -> a tuple of input tensors for `batch` images
    example: Callable
    unbatched: tuple[str, ...] = ()          # inputs without a batch axis (every other input: axis 0 is the batch)
    converts: bool = True                    # converted to the export's precision (else kept in fp32)
    tolerance: dict = field(default_factory=lambda: dict(TOLERANCE))
    contract: str = ""                       # what a caller must know beyond the input names (manifest.json)
    order: int = 100

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {name: {0: "batch"} for name in self.inputs if name not in self.unbatched}

    def precision_for(self, precision: str) -> str:
        return precision if self.converts else "fp32"
