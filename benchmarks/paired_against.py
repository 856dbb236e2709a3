"""Paired differences of an evaluation's sets against another of its sets than the one it was run against (same
students, same seeds; 95 % Student-t interval): e.g. DIVER against the VAE-round-trip control or against PReDD's
loop, from one `diver-lite evaluate` results.json, without training a student again.

    python benchmarks/paired_against.py runs/fmnist_ipc1/eval_mtt_dc/results.json runs/fmnist_ipc1/mtt_vae/mtt
"""
import json
import sys
from pathlib import Path

from diver_lite.experiments.fashion_mnist.evaluate import compare


def main(results_json: str, baseline: str) -> None:
    results = json.loads(Path(results_json).read_text())["results"]
    if baseline not in results:
        sys.exit(f"{baseline} is not a set of {results_json}: choose one of {', '.join(results)}")
    base = results[baseline]
    print(f"paired against {baseline} (cross-arch {base['cross_arch']:.2f}): mean [95 % interval]")
    for label, row in results.items():
        if label == baseline:
            continue
        diffs = compare(row, base)
        cells = [f"{name} {d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}] {d['verdict']}"
                 for name, d in diffs.items() if d["lo"] is not None]
        print(f"- {label}:\n    " + "\n    ".join(cells))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
