"""The pre-registered analysis of docs/experiments/decisive-dm-ipc1.md, and the commands of the bookkeeping that lets
the experiment run over several sessions (paired_design.py).

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
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from paired_design import (  # noqa: E402,F401  (the design and its bookkeeping, also read through this module)
    ARMS, CROSS, DECISIVE, FAMILY, NORMS, PER_SEED, RUNS_PER_SEED, SECONDARY, SEEDS, SETS, STUDENTS, Design,
    fingerprints, load_rows, restore, set_path, sync, whole_seeds)

from diver_lite.experiments.fashion_mnist.paired import holm, paired_test, smallest_detectable  # noqa: E402


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


def family_rows(table: dict, seeds: list[int], stages=SETS) -> list[str]:
    """The four pre-declared comparisons over `seeds`, Holm-adjusted among themselves, as table rows."""
    tests = {f"{x} − {y}": paired_test(differences(table, seeds, x, y, stages)) for x, y, _ in FAMILY}
    adjusted = holm({k: t["p"] for k, t in tests.items()})
    rows = []
    for (x, y, what), (k, t) in zip(FAMILY, tests.items()):
        mde = smallest_detectable(t["sd"], t["n"]), smallest_detectable(t["sd"], t["n"], 0.05 / 4)
        reading = ("effect" if adjusted[k] < 0.05 else "no effect detected")
        rows.append(f"| {k}: {what} | {fmt(t)} | {t['sd']:.2f} | {t['p']:.3g} | {adjusted[k]:.3g} | "
                    f"{mde[0]:.2f} / {mde[1]:.2f} | {reading} |")
    return rows


def analyse(keep: Path, design: Design = DECISIVE) -> str:
    rows = load_rows(keep, design)
    whole = whole_seeds(rows, design)
    seeds = sorted(whole)
    n, per, stages = design.seeds, design.runs_per_seed, design.stages
    final = len(seeds) == n
    table = scores(rows, whole)
    cpus = sorted(set(whole.values()))
    lines = [f"# {'Final' if final else 'INTERIM'} analysis: {len(seeds)} of {n} seeds complete "
             f"({len(seeds) * per} of {n * per} runs)", "",
             "Seeds by CPU: " + "; ".join(f"{c}: {[s for s in seeds if whole[s] == c]}" for c in cpus), ""]
    if not seeds:
        return "\n".join(lines + ["No whole seed yet."]) + "\n"
    sd = lambda v: f" ± {np.std(v, ddof=1):.2f}" if len(v) > 1 else ""  # noqa: E731
    head = [f"{st}: score" for st in stages] + ["mean"] * (len(stages) > 1) + [f"ConvNet {st}" for st in stages]
    lines += ["## Cross-architecture score per arm (mean over seeds; the proxy ConvNet beside it)", "",
              "| arm | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for arm, name in ARMS.items():
        got = [[score(table[(st, arm, s)]) for s in seeds] for st in stages]
        convnet = [np.mean([table[(st, arm, s)]["convnet"] for s in seeds]) for st in stages]
        cells = [f"{np.mean(v):.2f}{sd(v)}" for v in got] + [f"{np.mean(sum(got, [])):.2f}"] * (len(stages) > 1)
        lines.append(f"| {arm}: {name} | " + " | ".join(cells + [f"{c:.2f}" for c in convnet]) + " |")
    if len(seeds) < 2:
        return "\n".join(lines + ["", "One whole seed: no interval yet; the comparisons wait for more seeds."]) + "\n"
    lines += ["", "(± is the sample SD over seeds.)", "",
              f"## {design.family}", "",
              "| comparison | mean [95 % interval] | SD of d_s | p | Holm p | detectable at 80 % power (α 0.05 / "
              "Holm α/4) | reading |", "|---|---|---|---|---|---|---|"]
    lines += family_rows(table, seeds, stages)
    blocks = {c: [s for s in seeds if whole[s] == c] for c in cpus}
    largest = max(cpus, key=lambda c: (len(blocks[c]), c))
    if len(cpus) > 1 and len(blocks[largest]) >= 2:    # the protocol's sensitivity analysis, seeds of one CPU only
        lines += ["", f"Sensitivity (the protocol's): the same comparisons on the largest single-CPU block, {largest}, "
                  f"seeds {blocks[largest]}:", "", "| comparison | mean [95 % interval] | SD of d_s | p | Holm p | "
                  "detectable at 80 % power (α 0.05 / Holm α/4) | reading |", "|---|---|---|---|---|---|---|"]
        lines += family_rows(table, blocks[largest], stages)
    columns = [(st,) for st in stages] * (len(stages) > 1) + [stages]
    names = [f"{st} only" for st in stages] * (len(stages) > 1) + [design.together]
    lines += ["", "## Secondary (exploratory)", "", "| comparison | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for x, y, what in FAMILY + SECONDARY:
        cells = [fmt(paired_test(differences(table, seeds, x, y, stages=st))) for st in columns]
        lines.append(f"| {x} − {y}: {what} | " + " | ".join(cells) + " |")
    lines += ["", f"By normalisation ({design.together}; each group's mean accuracy):", "",
              "| comparison | " + " | ".join(NORMS) + " |", "|---|" + "---|" * len(NORMS)]
    for x, y, what in FAMILY + SECONDARY:
        cells = [fmt(paired_test(differences(table, seeds, x, y, stages, group))) for group in NORMS.values()]
        lines.append(f"| {x} − {y} | " + " | ".join(cells) + " |")
    lines += ["", f"Per student ({design.together}; Holm-adjusted p within each comparison; exploratory):", "",
              "| comparison | " + " | ".join(STUDENTS) + " |", "|---|" + "---|" * len(STUDENTS)]
    for x, y, what in FAMILY:
        per = {s: paired_test(differences(table, seeds, x, y, stages, (s,))) for s in STUDENTS}
        adj = holm({s: t["p"] for s, t in per.items()})
        lines.append(f"| {x} − {y} | " + " | ".join(f"{fmt(per[s])} (Holm p {adj[s]:.2g})" for s in STUDENTS)
                     + " |")
    return "\n".join(lines) + "\n"


def main(design: Design = DECISIVE, root: str = "runs/decisive", keep: str = "docs/results/decisive_dm_ipc1",
         doc: str | None = None) -> None:
    ap = argparse.ArgumentParser(description=doc or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", type=Path, default=Path(root))
    ap.add_argument("--keep", type=Path, default=Path(keep))
    ap.add_argument("--restore", type=Path, default=None, help="record fingerprints and restore kept runs")
    ap.add_argument("--sync", type=Path, default=None, help="add the runs finished under SYNC to KEEP")
    ap.add_argument("--md", type=Path, default=None, help="also write the analysis to this Markdown file")
    args = ap.parse_args()
    if args.restore is not None:
        restore(args.restore, args.keep, design)
        return
    if args.sync is not None:
        sync(args.sync, args.keep, design)
        return
    text = analyse(args.keep, design)
    print(text)
    if args.md:
        args.md.write_text(text)


if __name__ == "__main__":
    main()
