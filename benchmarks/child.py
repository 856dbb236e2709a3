"""One benchmark case in its own process (its peak memory is its own): the case prints one JSON line last."""

import json
import subprocess
import threading


def run_child(cmd: list[str], timeout: float | None = None) -> tuple[object, str | None]:
    """(the case's result, None), or (None, why it has none: its last error line, or the timeout)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if out.returncode:
        return None, f"failed: {(out.stderr.strip().splitlines() or ['?'])[-1][:110]}"
    return json.loads(out.stdout.strip().splitlines()[-1]), None


def stream_child(cmd: list[str], timeout: float | None, on_row) -> str | None:
    """Run a case that prints one JSON line per finished row; on_row(row) as each arrives. Returns None, or why
    it stopped early (its last error line, or the timeout): the rows it finished are kept either way."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    drain = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    drain.start()
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    try:
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    on_row(json.loads(line))
                except ValueError:
                    pass
        code = proc.wait()
    finally:
        if timer:
            timer.cancel()
    drain.join(timeout=5)
    if code == -9 and timeout:
        return f"timed out after {timeout:.0f} s"
    if code:
        return f"failed: {([e.strip() for e in err if e.strip()] or ['?'])[-1][:110]}"
    return None
