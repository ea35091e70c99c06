"""Machine facts for the report: CPU, memory, OS, Python."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from minimq.bench.deps import require


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def fsync_latency_ms(samples: int = 50) -> float:
    """Median milliseconds of ``fsync`` after appending 200 bytes to a file in the temp dir.

    The floor under every per-message durable acknowledgement on this machine.
    """
    timings = []
    with (
        tempfile.TemporaryDirectory(prefix="minimq-bench-fsync-") as directory,
        (Path(directory) / "probe").open("ab") as probe,
    ):
        for _ in range(samples):
            probe.write(b"x" * 200)
            probe.flush()
            start = time.perf_counter()
            os.fsync(probe.fileno())
            timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def machine_info() -> dict[str, str]:
    psutil = require("psutil", "psutil")
    return {
        "CPU": f"{cpu_model()}, {os.cpu_count()} logical cores",
        "Memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "fsync after a 200-byte append (median of 50, temp dir)": f"{fsync_latency_ms():.2f} ms",
        "Load average at start (1, 5, 15 min)": load_average(),
    }
