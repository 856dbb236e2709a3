"""The ground floor of probes about the machine and this process, imported by every layer and importing none:
the CPU's name and whether it has bf16/int8 matrix units (AMX), for results that differ between CPUs (students'
float rounding, speeds); the process's resident memory now and at its peak; a torch device's name."""

import functools
import os
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


def torch_device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return f"torch {device} ({torch.cuda.get_device_name(device)})"
    return f"torch cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"


def peak_rss_mb() -> float:
    """Peak resident memory of this process. Linux's VmHWM, which starts afresh at exec (ru_maxrss would carry
    the parent's peak over a fork); ru_maxrss (KiB) elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:                              # POSIX; `resource` does not exist on Windows
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except ImportError:
        try:
            import psutil

            info = psutil.Process().memory_info()
            return round(getattr(info, "peak_wset", info.rss) / 2**20, 1)   # Windows: peak working set
        except ImportError:
            return 0.0


def current_rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
