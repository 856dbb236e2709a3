"""The placements behind `--offload`: where the weights wait while another component runs."""

# Where the weights wait while another component runs (`--offload`). Each placement wraps the unchanged
# diffusers modules; TorchBackend calls `activate(name)` before it runs the encoder, the DiT or the decoder.
#
#   none        everything resident on the device
#   model       only the active component on the device; the others wait in CPU RAM (CUDA), or on disk (CPU: read
#               again from the model's safetensors when next needed)
#   sequential  accelerate's leaf hooks: each layer's weights go to the GPU just for its forward (CUDA only)
#   stream      the DiT one block at a time (the tied embedder, patch embedding and final layer stay resident):
#               CUDA copies the next block from pinned RAM on a side stream while the current one runs; CPU reads
#               each block from the safetensors file and drops it after its forward. The VAE as in `model`.

import torch

from diver_lite.errors import MissingDependencyError
from diver_lite.memory.tactics.offload import sequential_needs_cuda, stream_needs_safetensors
from diver_lite.models.lazy_weights import materialize, release, return_free_memory, set_parameter
from diver_lite.models.weights_file import WeightsFile

VAE_PARTS = {"encoder": ("encoder", "quant_conv"), "decoder": ("decoder", "post_quant_conv")}


class Resident:
    """--offload none: nothing moves."""

    name = "none"

    def __init__(self, device):
        self.device = torch.device(device)

    def activate(self, component: str) -> None:
        pass


class ModelOffload:
    """Only the active component's weights on the device. `parts`: component -> [(module, key prefix)];
    `files`: component -> WeightsFile when the waiting place is disk (CPU), None when it is CPU RAM (CUDA)."""

    name = "model"

    def __init__(self, device, parts: dict, files: dict | None = None, dtype: torch.dtype | None = None):
        self.device = torch.device(device)
        self.parts, self.files, self.dtype = parts, files or {}, dtype
        self.active = None
        for component in parts:
            self._away(component)

    def _away(self, component: str) -> None:
        for module, _ in self.parts[component]:
            if component in self.files:
                release(module)
            else:
                module.to("cpu")
        if component in self.files:
            return_free_memory()

    def _here(self, component: str) -> None:
        for module, prefix in self.parts[component]:
            if component in self.files:
                materialize(module, self.files[component], prefix, device=self.device, dtype=self.dtype)
            else:
                module.to(self.device)

    def activate(self, component: str) -> None:
        if component == self.active or component not in self.parts:
            return
        if self.active is not None:
            self._away(self.active)
        self._here(component)
        self.active = component


class SequentialOffload:
    """accelerate.cpu_offload on each component: weights in CPU RAM, moved per leaf module for its forward."""

    name = "sequential"

    def __init__(self, device, modules: list):
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise sequential_needs_cuda()
        try:
            from accelerate import cpu_offload
        except ImportError:
            raise MissingDependencyError("accelerate", "--offload sequential", "pip install accelerate")
        for module in modules:
            cpu_offload(module, execution_device=self.device)

    def activate(self, component: str) -> None:
        pass


class BlockStream:
    """DiT blocks streamed through the device one at a time (see the module docstring). `skip`: parameter
    prefixes inside a block that stay resident (the tied embedder)."""

    name = "stream"

    def __init__(self, device, transformer, vae_offload: ModelOffload, source: WeightsFile | None = None,
                 dtype: torch.dtype | None = None, skip: tuple[str, ...] = ()):
        self.device = torch.device(device)
        self.blocks = list(transformer.transformer_blocks)
        self.vae_offload, self.source, self.dtype, self.skip = vae_offload, source, dtype, skip
        self.pinned: list[dict] = []
        self._handles = []
        if self.device.type == "cuda":
            self._copy_stream = torch.cuda.Stream(self.device)
            self._ready: dict[int, torch.cuda.Event] = {}
            for block in self.blocks:   # weights wait in pinned RAM; the block itself holds meta tensors
                self.pinned.append({n: _pinned(p.detach()) for n, p in block.named_parameters()
                                    if not n.startswith(skip)})
                release(block, skip)
        elif source is None:
            raise stream_needs_safetensors()
        for i, block in enumerate(self.blocks):
            self._handles.append(block.register_forward_pre_hook(lambda m, a, i=i: self._before(i)))
            self._handles.append(block.register_forward_hook(lambda m, a, o, i=i: self._after(i)))

    def activate(self, component: str) -> None:
        self.vae_offload.activate(component)

    def _prefix(self, i: int) -> str:
        return f"transformer_blocks.{i}."

    def _before(self, i: int) -> None:
        if self.device.type != "cuda":
            materialize(self.blocks[i], self.source, self._prefix(i), self.skip, "cpu", self.dtype)
            return
        if i not in self._ready:
            self._prefetch(i)
        torch.cuda.current_stream(self.device).wait_event(self._ready.pop(i))
        for p in self.blocks[i].parameters():
            p.data.record_stream(torch.cuda.current_stream(self.device))
        if i + 1 < len(self.blocks):
            self._prefetch(i + 1)   # overlaps with block i's compute

    def _prefetch(self, i: int) -> None:
        block = self.blocks[i]
        with torch.cuda.stream(self._copy_stream):
            for name, tensor in self.pinned[i].items():
                set_parameter(block, name, tensor.to(self.device, non_blocking=True))
            event = torch.cuda.Event()
            event.record(self._copy_stream)
        self._ready[i] = event

    def _after(self, i: int) -> None:
        release(self.blocks[i], self.skip)
        if self.device.type == "cpu":
            return_free_memory()


def _pinned(t: torch.Tensor) -> torch.Tensor:
    t = t.to("cpu")
    return t if t.is_pinned() else t.pin_memory()
