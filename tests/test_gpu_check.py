"""The prepared GPU check (benchmarks/gpu/check.sh) dry-run on this CPU: it sets up, records the environment,
refuses each CUDA step in one line, writes its summary, and ends well inside its deadline."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a dry run needs a machine without CUDA")
def test_the_gpu_check_dry_runs_on_a_cpu_inside_its_deadline(tmp_path):
    env = {**os.environ, "PY": sys.executable, "DEADLINE": "120", "SITE": str(tmp_path / "site"),
           "XL": str(tmp_path / "xl"), "WHEELS": str(tmp_path / "no-wheels")}    # a clean checkout: none carried
    start = time.perf_counter()
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu" / "check.sh"), str(tmp_path / "out")], env=env,
                         capture_output=True, text=True, timeout=150)
    took = time.perf_counter() - start
    assert out.returncode == 0, out.stderr[-2000:]
    assert took < 120
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["check.log", "env.txt", "rows.jsonl", "summary.md"] and len(files) <= 6
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert out.stdout.rstrip().endswith(summary.rstrip())          # the summary is printed last
    for step in ("make-xl", "bf16", "compile-repro", "bf16-compile", "budget-4gb", "low-bit", "gpu-tests"):
        assert f"| {step} | refused: no CUDA device here |" in summary
    assert "| setup | ok" in summary and "| env | ok" in summary and '"torch"' in summary
    assert not (tmp_path / "xl").exists()                          # nothing heavy was made without a GPU
