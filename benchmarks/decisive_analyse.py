"""The pre-registered analysis of docs/experiments/decisive-dm-ipc1.md, and the bookkeeping that lets the experiment
run over several sessions.

  python benchmarks/decisive_analyse.py --restore runs/decisive --keep docs/results/decisive_dm_ipc1
      records the fingerprint of every set under runs/decisive (per CPU) in KEEP/sets.json, and puts the kept runs
      back into runs/decisive/eval_<set>/.diver-lite/runs.jsonl: those of whole seeds (every arm and student of
      both stage-1 sets, on one CPU), and those of unfinished seeds only where they ran on this CPU (a seed is never
      split across machines).
  python benchmarks/decisive_analyse.py runs/decisive --keep docs/results/decisive_dm_ipc1 [--md OUT.md]
      the pre-declared comparisons (Holm over the four), the secondary tables, and the design's power from the
      realised SD; interim (and labelled so) until all 900 runs exist.
  python benchmarks/decisive_analyse.py --sync runs/decisive --keep docs/results/decisive_dm_ipc1
      adds the runs finished under runs/decisive to KEEP; runs kept from other machines stay.
"""

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from diver_lite.experiments.fashion_mnist.paired import holm, paired_test, smallest_detectable
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
RUNS_PER_SEED = len(SETS) * len(ARMS) * len(STUDENTS)


def set_path(root: Path, stage: str, arm: str, seed: int | None) -> Path:
    if arm == "S":
        return root / stage / "dm.pt"
    if arm == "P":
        return root / stage / "P" / "dm.pt"
    return root / stage / arm / f"seed{seed}" / "dm.pt"


def fingerprints(root: Path) -> dict:
    """{fingerprint: [stage, arm, seed or None]} of every set present under root."""
    from diver_lite.layouts import read_set
    from diver_lite.pipeline.run_state import fingerprint

    out = {}
    for stage in SETS:
        for arm in ARMS:
            for seed in (range(SEEDS) if arm in PER_SEED else [None]):
                p = set_path(root, stage, arm, seed)
                if p.is_file():
                    out[fingerprint(read_set(p))] = [stage, arm, seed]
    return out


def load_rows(keep: Path) -> list[dict]:
    """Every kept run, labelled with its stage-1 set, arm and CPU (rows whose set is unknown are left out)."""
    sets = json.loads((keep / "sets.json").read_text()) if (keep / "sets.json").is_file() else {}
    rows = []
    for stage in SETS:
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


def whole_seeds(rows: list[dict]) -> dict[int, str]:
    """{seed: cpu} for the seeds with every run (both stage-1 sets, all arms and students) on one CPU."""
    by = defaultdict(set)
    for r in rows:
        by[(r["seed"], r["cpu"])].add((r["stage"], r["arm"], r["student"]))
    return {seed: cpu for (seed, cpu), got in by.items() if len(got) == RUNS_PER_SEED}


def restore(root: Path, keep: Path) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    sets_file = keep / "sets.json"
    sets = json.loads(sets_file.read_text()) if sets_file.is_file() else {}
    sets.setdefault(cpu_name(), {}).update(fingerprints(root))
    sets_file.write_text(json.dumps(sets, indent=1, sort_keys=True) + "\n")
    rows = load_rows(keep)
    whole, here = whole_seeds(rows), cpu_name()
    for stage in SETS:
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


def sync(root: Path, keep: Path) -> None:
    """Add the runs finished under root to KEEP's files; rows kept there already (other CPUs' included) stay."""
    sets = json.loads((keep / "sets.json").read_text()) if (keep / "sets.json").is_file() else {}
    for stage in SETS:
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


def scores(rows: list[dict], seeds: dict[int, str]) -> dict:
    """{(stage, arm, seed): {student: accuracy}} over the given seeds (each from its own CPU)."""
    out = defaultdict(dict)
    for r in rows:
        if seeds.get(r["seed"]) == r["cpu"]:
            out[(r["stage"], r["arm"], r["seed"])][r["student"]] = r["ema"]
    return out


def score(acc: dict, students=CROSS) -> float:
    return float(np.mean([acc[s] for s in students]))


def differences(table: dict, seeds: list[int], x: str, y: str, stages=SETS, students=CROSS) -> list[float]:
    """d_s: the mean over `stages` of score(x) - score(y) with seed s."""
    return [float(np.mean([score(table[(st, x, s)], students) - score(table[(st, y, s)], students)
                           for st in stages])) for s in seeds]


def fmt(t: dict, p: str = "p") -> str:
    if t["lo"] is None:
        return f"{t['mean']:+.2f} (n = {t['n']})"
    return f"{t['mean']:+.2f} [{t['lo']:+.2f}, {t['hi']:+.2f}]"


def family_rows(table: dict, seeds: list[int]) -> list[str]:
    """The four pre-declared comparisons over `seeds`, Holm-adjusted among themselves, as table rows."""
    tests = {f"{x} − {y}": paired_test(differences(table, seeds, x, y)) for x, y, _ in FAMILY}
    adjusted = holm({k: t["p"] for k, t in tests.items()})
    rows = []
    for (x, y, what), (k, t) in zip(FAMILY, tests.items()):
        mde = smallest_detectable(t["sd"], t["n"]), smallest_detectable(t["sd"], t["n"], 0.05 / 4)
        reading = ("effect" if adjusted[k] < 0.05 else "no effect detected")
        rows.append(f"| {k}: {what} | {fmt(t)} | {t['sd']:.2f} | {t['p']:.3g} | {adjusted[k]:.3g} | "
                    f"{mde[0]:.2f} / {mde[1]:.2f} | {reading} |")
    return rows


def analyse(keep: Path) -> str:
    rows = load_rows(keep)
    whole = whole_seeds(rows)
    seeds = sorted(whole)
    final = len(seeds) == SEEDS
    table = scores(rows, whole)
    cpus = sorted(set(whole.values()))
    lines = [f"# {'Final' if final else 'INTERIM'} analysis: {len(seeds)} of {SEEDS} seeds complete "
             f"({len(seeds) * RUNS_PER_SEED} of {SEEDS * RUNS_PER_SEED} runs)", "",
             "Seeds by CPU: " + "; ".join(f"{c}: {[s for s in seeds if whole[s] == c]}" for c in cpus), ""]
    if not seeds:
        return "\n".join(lines + ["No whole seed yet."]) + "\n"
    sd = lambda v: f" ± {np.std(v, ddof=1):.2f}" if len(v) > 1 else ""  # noqa: E731
    lines += ["## Cross-architecture score per arm (mean over seeds; the proxy ConvNet beside it)", "",
              "| arm | A: score | B: score | mean | ConvNet A | ConvNet B |", "|---|---|---|---|---|---|"]
    for arm, name in ARMS.items():
        a = [score(table[("A", arm, s)]) for s in seeds]
        b = [score(table[("B", arm, s)]) for s in seeds]
        ca = [table[("A", arm, s)]["convnet"] for s in seeds]
        cb = [table[("B", arm, s)]["convnet"] for s in seeds]
        lines.append(f"| {arm}: {name} | {np.mean(a):.2f}{sd(a)} | {np.mean(b):.2f}{sd(b)} | {np.mean(a + b):.2f} | "
                     f"{np.mean(ca):.2f} | {np.mean(cb):.2f} |")
    if len(seeds) < 2:
        return "\n".join(lines + ["", "One whole seed: no interval yet; the comparisons wait for more seeds."]) + "\n"
    lines += ["", "(± is the sample SD over seeds.)", "",
              "## The pre-declared comparisons (primary endpoint; Holm over the four)", "",
              "| comparison | mean [95 % interval] | SD of d_s | p | Holm p | detectable at 80 % power (α 0.05 / "
              "Holm α/4) | reading |", "|---|---|---|---|---|---|---|"]
    lines += family_rows(table, seeds)
    blocks = {c: [s for s in seeds if whole[s] == c] for c in cpus}
    largest = max(cpus, key=lambda c: (len(blocks[c]), c))
    if len(cpus) > 1 and len(blocks[largest]) >= 2:    # the protocol's sensitivity analysis, seeds of one CPU only
        lines += ["", f"Sensitivity (the protocol's): the same comparisons on the largest single-CPU block, {largest}, "
                  f"seeds {blocks[largest]}:", "", "| comparison | mean [95 % interval] | SD of d_s | p | Holm p | "
                  "detectable at 80 % power (α 0.05 / Holm α/4) | reading |", "|---|---|---|---|---|---|---|"]
        lines += family_rows(table, blocks[largest])
    lines += ["", "## Secondary (exploratory)", "", "| comparison | A only | B only | both sets |", "|---|---|---|---|"]
    for x, y, what in FAMILY + SECONDARY:
        cells = [fmt(paired_test(differences(table, seeds, x, y, stages=st))) for st in (("A",), ("B",), SETS)]
        lines.append(f"| {x} − {y}: {what} | " + " | ".join(cells) + " |")
    lines += ["", "By normalisation (both sets; each group's mean accuracy):", "",
              "| comparison | " + " | ".join(NORMS) + " |", "|---|" + "---|" * len(NORMS)]
    for x, y, what in FAMILY + SECONDARY:
        cells = [fmt(paired_test(differences(table, seeds, x, y, students=group))) for group in NORMS.values()]
        lines.append(f"| {x} − {y} | " + " | ".join(cells) + " |")
    lines += ["", "Per student (both sets; Holm-adjusted p within each comparison; exploratory):", "",
              "| comparison | " + " | ".join(STUDENTS) + " |", "|---|" + "---|" * len(STUDENTS)]
    for x, y, what in FAMILY:
        per = {s: paired_test(differences(table, seeds, x, y, students=(s,))) for s in STUDENTS}
        adj = holm({s: t["p"] for s, t in per.items()})
        lines.append(f"| {x} − {y} | " + " | ".join(f"{fmt(per[s])} (Holm p {adj[s]:.2g})" for s in STUDENTS)
                     + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", type=Path, default=Path("runs/decisive"))
    ap.add_argument("--keep", type=Path, default=Path("docs/results/decisive_dm_ipc1"))
    ap.add_argument("--restore", type=Path, default=None, help="record fingerprints and restore kept runs")
    ap.add_argument("--sync", type=Path, default=None, help="add the runs finished under SYNC to KEEP")
    ap.add_argument("--md", type=Path, default=None, help="also write the analysis to this Markdown file")
    args = ap.parse_args()
    if args.restore is not None:
        restore(args.restore, args.keep)
        return
    if args.sync is not None:
        sync(args.sync, args.keep)
        return
    text = analyse(args.keep)
    print(text)
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
