"""The row a validation sweep chooses (benchmarks/fashion_mnist_sweep.sh): every recovered set ranked by its paired
cross-architecture difference against the stage-1 set ON THE VALIDATION SPLIT, best first. The chosen row is one
that was measured as it is (knobs are not combined untested); the stage-1 set itself wins when nothing beats it.

    python benchmarks/sweep_choice.py runs/fmnist_ipc1/sweep_dm/eval_val_dc/results.json
"""
import json
import sys
from pathlib import Path

data = json.loads(Path(sys.argv[1]).read_text())
if data.get("split") != "val":
    sys.exit(f"{sys.argv[1]} was not tested on the validation split: a sweep must not choose on test")
base = data["baseline"]
rows = []
for label, row in data["results"].items():
    if label == base:
        continue
    diff = row["paired"]["cross_arch"]
    interval = "" if diff["lo"] is None else f" [{diff['lo']:+.2f}, {diff['hi']:+.2f}]"
    rows.append((diff["mean"], Path(label).parent.name, f"{row['cross_arch']:.2f}", interval))
rows.sort(reverse=True)
print(f"stage-1 set {base}: cross-arch {data['results'][base]['cross_arch']:.2f} on the validation split")
for mean, name, score, interval in rows:
    print(f"  {name:16s} {score}  paired {mean:+.2f}{interval}")
best = rows[0] if rows and rows[0][0] > 0 else None
print(f"chosen: {best[1] if best else 'the stage-1 set (no recovery beats it on validation)'}")
