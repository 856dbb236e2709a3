"""Pooled paired estimates over replications: each replication is a results.json of `diver-lite evaluate` with two
of its sets; the per-seed differences of PReDD's cross-architecture score (the mean over its five students) of all
replications are pooled, each seed of each replication one unit (they ran on different machines, so the seeds are
independent draws), and tested as one paired sample.

  python benchmarks/pooled.py docs/results/fmnist_ipc1_dc_control/results.json:runs/fmnist_ipc1/diver/dm.pt:runs/fmnist_ipc1/vae/dm.pt \
      docs/results/fmnist_ipc1_dc_prior_v3/results.json:runs/fmnist_ipc1/diver/dm.pt:runs/fmnist_ipc1/vae_v3/dm.pt
"""

import json
import sys

import numpy as np

from diver_lite.experiments.fashion_mnist.paired import paired_test, smallest_detectable
from diver_lite.experiments.fashion_mnist.students import CROSS_ARCH


def per_seed_scores(result: dict) -> np.ndarray:
    """[seeds] cross-architecture score of one set."""
    return np.mean([result["students"][s]["runs"] for s in CROSS_ARCH], axis=0)


def differences(spec: str) -> list[float]:
    path, x, y = spec.split(":")
    results = json.loads(open(path).read())["results"]
    return list(per_seed_scores(results[x]) - per_seed_scores(results[y]))


def main(specs: list[str]) -> None:
    pooled = []
    for spec in specs:
        d = differences(spec)
        t = paired_test(d)
        print(f"{spec.split(':')[0]}: {t['mean']:+.2f} [{t['lo']:+.2f}, {t['hi']:+.2f}] (n = {t['n']}, p = {t['p']:.3g})")
        pooled += d
    t = paired_test(pooled)
    print(f"pooled: {t['mean']:+.2f} [{t['lo']:+.2f}, {t['hi']:+.2f}] (n = {t['n']}, p = {t['p']:.3g}; "
          f"detectable at 80 % power: {smallest_detectable(t['sd'], t['n']):.2f})")


if __name__ == "__main__":
    main(sys.argv[1:])
