"""ONNX Runtime sessions of the exported graphs, and when they are held: all at once ("resident"), or one at a time
in the order a batch needs them, encoder -> DiT -> decoder ("lean": the peak is the largest graph's)."""

import gc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diver_lite.backends.providers import CPU, onnxruntime_module
from diver_lite.errors import ConfigError, ModelError, first_line

SESSION_MODES = ("lean", "resident")


@dataclass(frozen=True)
class SessionSettings:
    """ONNX Runtime's memory knobs (benchmarks/ort_memory.py measures them; docs/benchmarks/onnx.md)."""
    threads: int | None = None
    arena: bool = False        # the CPU memory arena keeps its high-water mark for the session's life
    prepack: bool = True       # pre-packed weights are faster; with dynamic int8 MatMulInteger they cost little


class OrtSession:
    """One graph; runs a batch at once, or image by image when the graph was exported with a fixed batch."""

    def __init__(self, path: Path, providers: list[str], fixed_batch: int | None,
                 settings: SessionSettings = SessionSettings(), expected: dict | None = None):
        """`expected`: the manifest's entry for this graph; a file whose inputs or outputs differ from the ones
        listed there (another graph saved under this name) is refused before it runs."""
        ort = onnxruntime_module()
        options = ort.SessionOptions()
        if settings.threads:
            options.intra_op_num_threads = settings.threads
        options.enable_cpu_mem_arena = settings.arena
        if not settings.prepack:
            options.add_session_config_entry("session.disable_prepacking", "1")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            raise ModelError(f"{path.name} does not load: {first_line(e, 200)}", "re-run diver-lite export")
        if providers[0] != CPU and self.session.get_providers()[0] != providers[0]:
            raise ConfigError(f"onnxruntime fell back to {self.session.get_providers()[0]} for {path.name} instead "
                              f"of {providers[0]}", "the libraries that provider needs were not found (for CUDA: "
                              "CUDA 12 and cuDNN 9 with onnxruntime-gpu)")
        self.inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        for what, found in (("inputs", self.inputs), ("outputs", outputs)):
            listed = (expected or {}).get(what)
            if isinstance(listed, list) and list(listed) != found:
                raise ModelError(f"{path.name} is not the graph the manifest lists under that name: its {what} are "
                                 f"{found}, the manifest's {listed}", "re-run diver-lite export into this folder "
                                 "(a graph file was replaced by another)")
        self.input_shape = self.session.get_inputs()[0].shape
        self.fixed_batch = fixed_batch

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def __call__(self, *arrays):
        if self.fixed_batch is None or arrays[0].shape[0] == self.fixed_batch:
            return self.session.run(None, dict(zip(self.inputs, arrays)))
        parts = [self.session.run(None, dict(zip(self.inputs, [a[i:i + 1] for a in arrays])))
                 for i in range(arrays[0].shape[0])]
        return [np.concatenate(outs) for outs in zip(*parts)]


class SessionPool:
    """pool[name] -> the OrtSession of graph `name`, made when first asked for; under "lean" the one held before is
    released first. `names` in the order a batch needs them: under "lean" the first stays loaded after the checks."""

    def __init__(self, folder: Path, graphs: dict, names: tuple[str, ...], providers: list[str], mode: str,
                 settings: SessionSettings):
        if mode not in SESSION_MODES:
            raise ConfigError(f"unknown session mode {mode!r}", f"use one of {', '.join(SESSION_MODES)}")
        self.folder, self.graphs, self.providers = folder, graphs, providers
        self.mode, self.settings = mode, settings
        self.held: dict[str, OrtSession] = {}
        self.provider = None
        self.shapes = {}
        for name in reversed(names):    # each graph loads once here: its input shape and its provider are checked
            if mode == "lean":
                self.held.clear()
                gc.collect()
            session = self.held[name] = self._make(name)
            self.shapes[name] = session.input_shape[1:]
            self.provider = self.provider or session.provider

    def _make(self, name: str) -> OrtSession:
        return OrtSession(self.folder / self.graphs[name]["file"], self.providers,
                          self.graphs[name].get("fixed_batch"), self.settings, self.graphs[name])

    def __getitem__(self, name: str) -> OrtSession:
        if name not in self.held:
            if self.mode == "lean":
                self.held.clear()
                gc.collect()
            self.held[name] = self._make(name)
        return self.held[name]
