"""One output-folder policy for every command: a new or empty folder is used; a folder holding an earlier
diver-lite output (marked by OUT/.diver-lite/) is replaced only with --overwrite (or continued with --resume);
anything else is refused. A folder that is, contains, or lies inside an input is always refused, so nothing a
user owns is ever written over. No I/O beyond inspecting and marking the folder."""

import json
import os
from collections.abc import Iterable
from pathlib import Path

from diver_lite.errors import OutputError

MARK = ".diver-lite"          # recover keeps its per-image state here too


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def is_diver_output(out: Path) -> bool:
    return (Path(out) / MARK).is_dir()


def check_outside_inputs(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None],
                         what: str = "output") -> None:
    """Refuse an output path that is, contains, or lies inside one of the inputs."""
    out = Path(out)
    for src in (Path(p) for p in inputs if p is not None):
        if src.exists() and (_inside(src, out) or (src.is_dir() and _inside(out, src))):
            where = "is or contains" if _inside(src, out) else "lies inside"
            raise OutputError(f"{what} {out} {where} the input {src}",
                              "write the output to a place of its own, outside the input")


MIN_FREE_BYTES = 16 * 2**20


def check_writable(out: Path, what: str = "output folder") -> None:
    """Refuse, before any work, an output whose nearest existing folder cannot be written (read-only file system,
    permissions) or has less than 16 MiB free."""
    import shutil

    probe = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if probe.is_file():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {out} cannot be written ({probe} is read-only or not ours)",
                          "pick a writable -o folder")
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if free < MIN_FREE_BYTES:
        raise OutputError(f"{what} {out}: only {free / 2**20:.1f} MiB free on its disk", "free disk space or pick "
                          "another -o")


def check_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False,
                 resume: bool = False, what: str = "output folder", resumable: bool = False,
                 replaceable: bool = True) -> str:
    """'new' (missing or empty), or 'earlier' (an earlier diver-lite output, with overwrite or resume); else an
    OutputError that says what to do: `resumable`/`replaceable` say whether the command has --resume/--overwrite,
    so that the fix names only options that exist. Nothing is written or removed here."""
    out = Path(out)
    check_outside_inputs(out, inputs, what)
    check_writable(out, what)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{what} {out} is a file", "give a folder with -o")
    if not out.is_dir() or not any(out.iterdir()):
        return "new"
    if not is_diver_output(out):
        if resume:
            raise OutputError(f"{out} holds no diver-lite run to resume", "drop --resume or pick another -o")
        raise OutputError(f"{what} {out} is not empty (files that diver-lite did not write)",
                          "pick a new or empty -o folder (--overwrite only replaces an earlier diver-lite output)")
    if overwrite or resume:
        return "earlier"
    fixes = (["pass --resume to continue that run"] if resumable else []) + \
        (["--overwrite to replace it"] if replaceable else [])
    raise OutputError(f"{what} {out} is not empty (an earlier diver-lite output)",
                      (", ".join(fixes) + ", or pick another -o") if fixes else
                      "pick another -o (or delete that folder first)")


def mark(out: str | os.PathLike, command: str) -> None:
    """Make `out` a diver-lite output folder (a later --overwrite may replace it)."""
    folder = Path(out) / MARK
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "command.json").write_text(json.dumps({"command": command}))
