"""Checkpoints of the long training loops (train-prior's VAE and DiT, DM and MTT distillation): a run that is
interrupted, killed or fails afterwards resumes where it stopped and ends bit for bit where an uninterrupted run
ends. The loops stay pure functions: they take a `Checkpoint`, ask it for a saved state once, and hand it their
whole state (modules, optimisers, schedules, both random generators, the history) when it is due; the file is
written under a temporary name and read back with `torch.load(weights_only=True)`."""

import json
import time
from collections.abc import Callable
from pathlib import Path

from diver_lite.errors import ConfigError, InputError


class Checkpoint:
    """One loop's checkpoint file. `settings`: what makes a run the same run (options, data fingerprint); a
    checkpoint saved under other settings is refused, never resumed. `every_s`: the least time between saves."""

    def __init__(self, path: Path, settings: dict, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.path, self.settings, self.every_s, self.clock = Path(path), _plain(settings), every_s, clock
        self.last = clock()

    def load(self) -> dict | None:
        """The saved state, or None when there is none."""
        import torch

        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, weights_only=True, map_location="cpu")
            saved = json.loads(state["settings"])
        except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
            raise InputError(f"the checkpoint {self.path} is damaged ({str(e)[:100]})",
                             f"delete {self.path} to start this step afresh")
        differ = sorted(k for k in set(saved) | set(self.settings) if saved.get(k) != self.settings.get(k))
        if differ:
            raise ConfigError(f"the checkpoint {self.path} was saved by a run with other settings "
                              f"({', '.join(differ[:4])} differ)", "resume with that run's options, or pass "
                              "--overwrite to start afresh")
        return state

    def due(self) -> bool:
        return self.clock() - self.last >= self.every_s

    def save(self, state: dict) -> None:
        from diver_lite.layouts.tensors import atomic_torch_save

        atomic_torch_save({**state, "settings": json.dumps(self.settings, sort_keys=True)}, self.path)
        self.last = self.clock()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _plain(settings: dict) -> dict:
    """Settings as JSON gives them back (tuples as lists), so a saved and a live copy compare equal."""
    return json.loads(json.dumps(settings, default=str))


def data_fingerprint(*arrays) -> str:
    """A short hash of the training data (numpy arrays or tensors), part of a checkpoint's settings."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a.numpy() if hasattr(a, "numpy") else a)
        h.update(str((a.shape, a.dtype)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]
