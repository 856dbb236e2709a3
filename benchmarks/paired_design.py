"""The design of the pre-registered experiments of docs/experiments/ (arms, students, stage-1 sets, n) and the
bookkeeping that lets them run over several sessions and CPUs: the fingerprint of every set per CPU, which seeds are
whole, and the kept runs put back into (restore) and taken from (sync) an evaluation's state. The analysis itself is
decisive_analyse.py."""

import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from diver_lite.machine import cpu_name

SETS = ("A", "B")
ARMS = {"S": "stage 1", "P": "projection (clip + channel mean)", "R": "VAE round trip", "D": "DIVER, shipped preset",
        "Q": "DIVER, paper settings"}
PER_SEED = ("R", "D", "Q")
STUDENTS = ("convnet", "vit", "efficientnet", "shufflenetv2", "mobilenetv2", "resnet18")
CROSS = ("vit", "efficientnet", "shufflenetv2", "mobilenetv2", "resnet18")
NORMS = {"BatchNorm": ("resnet18", "mobilenetv2", "efficientnet", "shufflenetv2"), "LayerNorm": ("vit",),
         "instance norm (proxy)": ("convnet",)}
SEEDS = 15
FAMILY = (("D", "R", "what the DiT adds over the VAE round trip"),
          ("D", "P", "what DIVER adds over the model-free projection"),
          ("Q", "D", "the paper's settings against the shipped preset"),
          ("D", "S", "DIVER over the stage-1 set"))
SECONDARY = (("R", "P", "the VAE round trip over the projection"), ("Q", "R", "the paper's settings over the round trip"),
             ("P", "S", "the projection over the stage-1 set"))


@dataclass(frozen=True)
class Design:
    """What a run of this analysis covers: its stage-1 sets, its n, and the name each set has in its folder (the
    decisive experiment's by default; the MTT follow-up reuses the arms, students and analysis with one set)."""
    stages: tuple = SETS
    seeds: int = SEEDS
    set_name: str = "dm.pt"
    family: str = "The pre-declared comparisons (primary endpoint; Holm over the four)"

    @property
    def runs_per_seed(self) -> int:
        return len(self.stages) * len(ARMS) * len(STUDENTS)

    @property
    def together(self) -> str:
        return "both sets" if len(self.stages) == 2 else "all sets" if len(self.stages) > 2 else f"set {self.stages[0]}"


DECISIVE = Design()
RUNS_PER_SEED = DECISIVE.runs_per_seed


def set_path(root: Path, stage: str, arm: str, seed: int | None, design: Design = DECISIVE) -> Path:
    if arm == "S":
        return root / stage / design.set_name
    if arm == "P":
        return root / stage / "P" / design.set_name
    return root / stage / arm / f"seed{seed}" / design.set_name


def fingerprints(root: Path, design: Design = DECISIVE) -> dict:
    """{fingerprint: [stage, arm, seed or None]} of every set present under root."""
    from diver_lite.layouts import read_set
    from diver_lite.pipeline.run_state import fingerprint

    out = {}
    for stage in design.stages:
        for arm in ARMS:
            for seed in (range(design.seeds) if arm in PER_SEED else [None]):
                p = set_path(root, stage, arm, seed, design)
                if p.exists():               # a file (DM) or a folder (MTT)
                    out[fingerprint(read_set(p))] = [stage, arm, seed]
    return out


def load_rows(keep: Path, design: Design = DECISIVE) -> list[dict]:
    """Every kept run, labelled with its stage-1 set, arm and CPU (rows whose set is unknown are left out)."""
    sets = json.loads((keep / "sets.json").read_text()) if (keep / "sets.json").is_file() else {}
    rows = []
    for stage in design.stages:
        f = keep / f"runs_{stage}.jsonl"
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            cpu = row.get("cpu", "unknown CPU")
            label = sets.get(cpu, {}).get(row["set"])
            if label is None:
                continue
            st, arm, seed = label
            if seed is not None and seed != row["seed"]:
                continue
            rows.append({**row, "stage": st, "arm": arm, "file": stage, "cpu": cpu})
    return rows


def whole_seeds(rows: list[dict], design: Design = DECISIVE) -> dict[int, str]:
    """{seed: cpu} for the seeds with every run (every stage-1 set, arm and student) on one CPU."""
    by = defaultdict(set)
    for r in rows:
        by[(r["seed"], r["cpu"])].add((r["stage"], r["arm"], r["student"]))
    return {seed: cpu for (seed, cpu), got in by.items() if len(got) == design.runs_per_seed}


def restore(root: Path, keep: Path, design: Design = DECISIVE) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    sets_file = keep / "sets.json"
    sets = json.loads(sets_file.read_text()) if sets_file.is_file() else {}
    sets.setdefault(cpu_name(), {}).update(fingerprints(root, design))
    sets_file.write_text(json.dumps(sets, indent=1, sort_keys=True) + "\n")
    rows = load_rows(keep, design)
    whole, here = whole_seeds(rows, design), cpu_name()
    for stage in design.stages:
        src = keep / f"runs_{stage}.jsonl"
        if not src.is_file():
            continue
        kept = [r for r in rows if r["file"] == stage and (whole.get(r["seed"]) == r["cpu"] or
                                                           (r["seed"] not in whole and r["cpu"] == here))]
        # A seed made whole on another CPU is done: its runs are put back under this CPU's fingerprint of the same
        # set (the recovered sets differ by a few ulps between CPUs), so that the evaluation here skips the seed
        # instead of training it again. Only the evaluation's own state gets these rows; sync() leaves them out.
        mine = {tuple(label): fp for fp, label in sets.get(here, {}).items()}
        for r in kept:
            if r["cpu"] != here and (r["stage"], r["arm"], None if r["arm"] in ("S", "P") else r["seed"]) in mine:
                r["set"] = mine[(r["stage"], r["arm"], None if r["arm"] in ("S", "P") else r["seed"])]
        dst = root / f"eval_{stage}" / ".diver-lite" / "runs.jsonl"
        dst.parent.mkdir(parents=True, exist_ok=True)
        present = set(dst.read_text().splitlines()) if dst.is_file() else set()
        fields = ("setting", "set", "student", "seed", "cpu", "ema", "raw")
        lines = [json.dumps({k: r[k] for k in fields}) for r in kept]
        with open(dst, "a") as f:
            for line in lines:
                if line not in present:
                    f.write(line + "\n")
        print(f"{stage}: {len(kept)} kept runs restored ({len(whole)} whole seeds so far)", file=sys.stderr)


def _key(line: str) -> tuple | None:
    """What makes a run the same run: its set, student, seed, setting and CPU (not the line's spelling)."""
    try:
        r = json.loads(line)
        return (r["set"], r["student"], r["seed"], str(r.get("setting")), r.get("cpu"))
    except (ValueError, KeyError, TypeError):
        return None


def _known(line: str, sets: dict) -> bool:
    """Is the row's set one its CPU recovered (a run that happened there)?"""
    try:
        row = json.loads(line)
        return row["set"] in sets.get(row.get("cpu"), {})
    except (ValueError, KeyError, TypeError):
        return False


def sync(root: Path, keep: Path, design: Design = DECISIVE) -> None:
    """Add the runs finished under root to KEEP's files; rows kept there already (other CPUs' included) stay."""
    sets = json.loads((keep / "sets.json").read_text()) if (keep / "sets.json").is_file() else {}
    for stage in design.stages:
        src = root / f"eval_{stage}" / ".diver-lite" / "runs.jsonl"
        if not src.is_file():
            continue
        dst = keep / f"runs_{stage}.jsonl"
        present = dst.read_text().splitlines() if dst.is_file() else []
        seen = {_key(line) for line in present}
        new = []
        for line in src.read_text().splitlines():
            if not _known(line, sets):      # a row restore() put back under this CPU's fingerprint: not a new run
                continue
            if _key(line) is not None and _key(line) not in seen:
                seen.add(_key(line))
                new.append(line)
        if new:
            tmp = dst.with_suffix(f".{os.getpid()}.tmp")   # two runners may sync at once
            tmp.write_text("\n".join(present + new) + "\n")
            tmp.replace(dst)
