"""What a run is, by content rather than by path: a fingerprint of the model's weight files (a resumed or sharded
run whose model changed in place is refused), and the lock that keeps a second process from writing into a folder
while another run writes there (a lock left by a killed process is recognised by its pid and taken over)."""

import hashlib
import json
import os
from pathlib import Path

from diver_lite.errors import OutputError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".data")
SAMPLES, CHUNK = 16, 1 << 16


def file_fingerprint(path: Path) -> str:
    """Size, the first 64 KiB (a safetensors header: names, shapes, dtypes) and 16 evenly spaced 64 KiB samples of
    the rest: weights retrained in place change it, a 3 GB file costs about 1 MB of reading."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        for k in range(SAMPLES + 1):
            f.seek(0 if k == 0 else (size - CHUNK) * k // SAMPLES if size > CHUNK else 0)
            h.update(f.read(CHUNK))
    return h.hexdigest()[:16]


def folder_fingerprint(folder: Path) -> dict:
    """{relative path: fingerprint} of the weight files (and configs) under a folder."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name.endswith(".json")) and ".diver-lite" not in p.parts:
            out[p.relative_to(folder).as_posix()] = file_fingerprint(p)
    return out


def model_fingerprint(model, vae=None, onnx_dir=None) -> str:
    """One short hash of what --model/--vae (or --onnx) name, by content. The embedded prior and tiny-random are
    content too (the installed files; tiny-random's weights come from a fixed seed)."""
    from diver_lite.models.source import resolve_source

    parts: dict = {}
    if onnx_dir is not None:
        parts["onnx"] = folder_fingerprint(Path(onnx_dir))
    else:
        source = resolve_source(model, vae)
        if source.kind == "tiny":
            parts["model"] = "tiny-random"
        elif source.kind == "loaded":
            from diver_lite.export.onnx import model_hash

            parts["model"] = model_hash(source.loaded)
        elif source.kind == "checkpoint":
            parts["model"] = file_fingerprint(source.path)
        else:
            parts["model"] = folder_fingerprint(source.path)
        if source.kind != "loaded" and source.vae is not None and Path(str(source.vae)).is_dir():
            parts["vae"] = folder_fingerprint(Path(str(source.vae)))
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _holders(state: Path) -> list[tuple[int, str]]:
    """(pid, kind) of the live processes that hold a lock on the run folder; stale ones are removed."""
    live = []
    for f in (state / "locks").glob("*") if (state / "locks").is_dir() else []:
        try:
            pid, kind = int(f.name.split(".")[0]), f.name.split(".")[1]
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and _alive(pid):
            live.append((pid, kind))
        elif pid != os.getpid():
            f.unlink(missing_ok=True)
    return live


def check_unlocked(state: Path, out: Path, sharded: bool) -> None:
    """Refuse to start while another process writes the folder: any live run for a single-process run, a live
    single-process run for a shard (shards of one run share the folder)."""
    holders = [(pid, kind) for pid, kind in _holders(state) if not sharded or kind == "single"]
    if holders:
        raise OutputError(f"another diver-lite run (pid {holders[0][0]}) is writing to {out}",
                          "wait for it to finish, or pick another -o")


def take_lock(state: Path, sharded: bool) -> Path:
    (state / "locks").mkdir(parents=True, exist_ok=True)
    lock = state / "locks" / f"{os.getpid()}.{'shard' if sharded else 'single'}"
    lock.write_text("")
    return lock
