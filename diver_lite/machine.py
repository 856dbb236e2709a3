"""What machine a number was measured on: the CPU's name and whether it has bf16/int8 matrix units (AMX), read
from /proc/cpuinfo (elsewhere: platform's processor name). Results that differ between CPUs (students' float
rounding, speeds) record it."""

import functools
import platform
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """e.g. 'Intel(R) Xeon(R) Processor (AMX)' or 'AMD EPYC 7B13'."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.machine() or "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return f"{name} (AMX)" if "amx_bf16" in flags else name
