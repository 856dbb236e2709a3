"""Part 2 of docs/experiments/followup-mtt-ipc1-raw-dit.md: the raw-DiT arm W on the decisive experiment's set A,
paired with that experiment's runs of the same seeds on the same CPU.

  python benchmarks/followup_analyse.py --seeds
      the five lowest seeds the decisive experiment finished on this CPU, as evaluate's --seeds list (refused when
      there are fewer than five: run the decisive experiment further first)
  python benchmarks/followup_analyse.py --restore runs/followup     # kept W runs back into the evaluation's state
  python benchmarks/followup_analyse.py --sync runs/followup        # finished W runs into KEEP
  python benchmarks/followup_analyse.py                             # D - W and W - S, Holm over the two
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import decisive_analyse as decisive  # noqa: E402

from diver_lite.experiments.fashion_mnist.paired import holm, paired_test, smallest_detectable  # noqa: E402
from diver_lite.machine import cpu_name  # noqa: E402

N = 5
KEEP = Path("docs/results/followup_raw_dit")
DECISIVE = Path("docs/results/decisive_dm_ipc1")
COMPARISONS = (("D", "W", "what inheritance and guidance add over sampling the class"),
               ("W", "S", "the prior's class samples over the distilled set"))


def chosen_seeds(decisive_keep: Path, cpu: str) -> list[int]:
    """The N lowest whole seeds of the decisive experiment on `cpu` (by CPU and number, never by results)."""
    whole = decisive.whole_seeds(decisive.load_rows(decisive_keep))
    return sorted(s for s, c in whole.items() if c == cpu)[:N]


def w_scores(keep: Path, cpu: str) -> dict[int, dict]:
    """{seed: {student: accuracy}} of the kept W runs on `cpu`."""
    out: dict[int, dict] = {}
    f = keep / "runs_W.jsonl"
    for line in (f.read_text().splitlines() if f.is_file() else []):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("cpu") == cpu:
            out.setdefault(row["seed"], {})[row["student"]] = row["ema"]
    return out


def analyse(keep: Path, decisive_keep: Path, cpu: str) -> str:
    seeds = chosen_seeds(decisive_keep, cpu)
    rows = decisive.load_rows(decisive_keep)
    table = decisive.scores(rows, {s: cpu for s in seeds})
    w = w_scores(keep, cpu)
    done = [s for s in seeds if set(w.get(s, {})) >= set(decisive.STUDENTS)]
    lines = [f"# {'Final' if len(done) == N else 'INTERIM'} analysis of the raw-DiT arm: {len(done)} of {N} seeds "
             f"({cpu}, seeds {seeds})", ""]
    if len(done) < 2:
        return "\n".join(lines + ["Fewer than two whole seeds: no interval yet."]) + "\n"
    arm = {"W": {s: w[s] for s in done}, **{a: {s: table[("A", a, s)] for s in done} for a in ("S", "R", "D")}}
    lines += ["| arm (set A) | score | ConvNet |", "|---|---|---|"]
    for a in ("S", "R", "W", "D"):
        lines.append(f"| {a} | {np.mean([decisive.score(arm[a][s]) for s in done]):.2f} | "
                     f"{np.mean([arm[a][s]['convnet'] for s in done]):.2f} |")
    tests = {f"{x} − {y}": paired_test([decisive.score(arm[x][s]) - decisive.score(arm[y][s]) for s in done])
             for x, y, _ in COMPARISONS}
    adjusted = holm({k: t["p"] for k, t in tests.items()})
    lines += ["", "| comparison | mean [95 % interval] | p | Holm p | detectable at 80 % power (α 0.05) | reading |",
              "|---|---|---|---|---|---|"]
    for (x, y, what), (k, t) in zip(COMPARISONS, tests.items()):
        reading = "effect" if adjusted[k] < 0.05 else "no effect detected"
        lines.append(f"| {k}: {what} | {decisive.fmt(t)} | {t['p']:.3g} | {adjusted[k]:.3g} | "
                     f"{smallest_detectable(t['sd'], t['n']):.2f} | {reading} |")
    return "\n".join(lines) + "\n"


def copy_rows(src: Path, dst: Path, cpu: str | None = None) -> int:
    """Append to `dst` the lines of `src` it lacks (only those of `cpu` when given); returns how many."""
    if not src.is_file():
        return 0
    present = set(dst.read_text().splitlines()) if dst.is_file() else set()
    new = [line for line in src.read_text().splitlines() if line.strip() and line not in present
           and (cpu is None or json.loads(line).get("cpu") == cpu)]
    if new:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp")
        tmp.write_text("\n".join(sorted(present) + new) + "\n" if present else "\n".join(new) + "\n")
        tmp.replace(dst)
    return len(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, default=KEEP)
    ap.add_argument("--decisive", type=Path, default=DECISIVE)
    ap.add_argument("--seeds", action="store_true", help="print the chosen seeds as a comma list")
    ap.add_argument("--restore", type=Path, default=None)
    ap.add_argument("--sync", type=Path, default=None)
    args = ap.parse_args()
    state = lambda root: root / "eval_W" / ".diver-lite" / "runs.jsonl"  # noqa: E731
    if args.seeds:
        seeds = chosen_seeds(args.decisive, cpu_name())
        if len(seeds) < N:
            sys.exit(f"the decisive experiment has {len(seeds)} whole seeds on {cpu_name()}: {N} are needed first")
        print(",".join(map(str, seeds)))
    elif args.restore is not None:
        print(f"{copy_rows(args.keep / 'runs_W.jsonl', state(args.restore), cpu_name())} kept W runs restored",
              file=sys.stderr)
    elif args.sync is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        copy_rows(state(args.sync), args.keep / "runs_W.jsonl")
    else:
        print(analyse(args.keep, args.decisive, cpu_name()), end="")


if __name__ == "__main__":
    main()
