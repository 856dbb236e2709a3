"""One benchmark case in its own process (its peak memory is its own): the case prints one JSON line last."""

import json
import subprocess


def run_child(cmd: list[str], timeout: float | None = None) -> tuple[object, str | None]:
    """(the case's result, None), or (None, why it has none: its last error line, or the timeout)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if out.returncode:
        return None, f"failed: {(out.stderr.strip().splitlines() or ['?'])[-1][:110]}"
    return json.loads(out.stdout.strip().splitlines()[-1]), None
