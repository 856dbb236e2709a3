"""The state of a recovery run under OUT/.diver-lite/: its identity (run.json, checked on resume), each finished
image cached as it is computed, the shards of a multi-process run and the lock of the one that merges."""

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diver_lite.errors import ConfigError, OutputError
from diver_lite.layouts.files import atomic_write
from diver_lite.output_policy import MARK, check_output

STATE_DIR = MARK


def fingerprint(dset) -> str:
    """A short hash of a DistilledSet's images and labels."""
    h = hashlib.sha256()
    for a in (dset.images, dset.labels):
        h.update(str((a.shape, str(a.dtype))).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def prepare_output(out: Path, run: dict, resume: bool, overwrite: bool, wait_s: float = 0.0,
                   inputs: tuple = ()) -> Path:
    """Check the output folder before any work (output_policy: never over an input, --overwrite only over an
    earlier diver-lite run); returns the state folder. Resuming needs the same run.
    `wait_s`: how long to wait for another process of the same run to write run.json (sharded runs)."""
    from diver_lite.pipeline.identity import check_unlocked

    state = out / STATE_DIR
    busy = check_output(out, inputs, overwrite, resume, resumable=True) == "earlier"
    if busy:
        check_unlocked(state, out, sharded=wait_s > 0)
    if busy and resume:
        run_file = state / "run.json"
        deadline = time.monotonic() + wait_s
        while state.is_dir() and not run_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not run_file.is_file():
            raise OutputError(f"{out} holds no diver-lite run to resume", "drop --resume or pick another -o")
        try:
            previous = json.loads(run_file.read_text())
        except (ValueError, OSError) as e:
            raise OutputError(f"{run_file} is damaged ({type(e).__name__}), so the run cannot be resumed",
                              "pass --overwrite to start the run again (finished images are then redone)")
        if not isinstance(previous, dict):
            raise OutputError(f"{run_file} is damaged (not a run record)", "pass --overwrite to start again")
        if previous != run:
            diff = sorted(k for k in set(run) | set(previous) if run.get(k) != previous.get(k))
            raise OutputError(f"{out} holds a run with different {', '.join(diff)}",
                              "resume with the same input, model and options, or pick another -o")
    elif busy and overwrite:
        remove_earlier_output(out, state)
    try:
        (state / "images").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write to {out}: {e.strerror}", "pick a writable -o folder")
    atomic_write(state / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(run, indent=1)))
    return state


def remove_earlier_output(out: Path, state: Path) -> None:
    """--overwrite replaces the earlier run whole: its state, its set (as its report names it), its report, PNGs
    and grid; nothing of it is left beside the new output. Files diver-lite did not write are not touched."""
    try:
        earlier = json.loads((out / "report.json").read_text()).get("output", {}).get("set")
    except (OSError, ValueError, AttributeError):
        earlier = None
    if earlier and Path(earlier).resolve().parent == out.resolve():
        target = Path(earlier)
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    for name in ("report.json", "report.md", "grid.png", "run.toml"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "png", ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)


def cached_image(state: Path, index: int) -> Path:
    return state / "images" / f"{index:08d}.safetensors"


@dataclass(frozen=True)
class Shard:
    """Process `index` of `count` takes every count-th batch. Batches are fixed index blocks, so each image is
    computed exactly as in a single process, and the shards' outputs merge bit for bit."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count} does not exist", "give K/N with 0 <= K < N")

    @classmethod
    def from_env(cls) -> "Shard":
        """torchrun and accelerate launch set RANK and WORLD_SIZE for each process."""
        rank, world = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
        try:
            return cls(int(rank), int(world))
        except ValueError:
            raise ConfigError(f"RANK={rank!r} / WORLD_SIZE={world!r} are not whole numbers",
                              "unset them, or launch with torchrun / accelerate launch, which set them") from None

    def batches(self, n: int, batch_size: int) -> list[list[int]]:
        blocks = [list(range(lo, min(lo + batch_size, n))) for lo in range(0, n, batch_size)]
        return blocks[self.index::self.count]


def take_merge_lock(state: Path) -> bool:
    """One process of a sharded run writes the set: the first to create the lock, or any when its holder died."""
    lock = state / "merge.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return True
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False  # its holder is alive and merging
            except (ProcessLookupError, ValueError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale: the holder died
    return False


def intact(path: Path) -> bool:
    """A cached image whose safetensors header is readable and whose size matches it (a truncated or garbled
    file is not, and is recomputed)."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 2 <= n <= 1 << 20:
                return False
            header = json.loads(f.read(n))
        end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        return path.stat().st_size == 8 + n + end
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
