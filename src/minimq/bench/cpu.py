"""Broker CPU time over one workload, for the *broker CPU per message* rows.

CPU time per message moves far less with other load on a shared machine than
throughput does, so the report shows it beside the rates. On Linux the meter
sums the time each thread of the server (and of its child processes) spent
on a CPU, user and system, from ``/proc/<pid>/task/<tid>/schedstat`` in
nanoseconds: a quick run's workload lasts a fraction of a second, and the
clock-tick counters of ``/proc/<pid>/stat`` (10 ms) would round it to zero.
Elsewhere it falls back to psutil's ``cpu_times`` (user + system).

Per-thread deltas: a thread that exits during the workload loses its share
since the start (it is not subtracted), so the figure is never negative and,
for brokers that keep their threads (all three here), complete.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from minimq.bench.deps import require

NANOSECONDS = 1e9


def _process_ids(pid: int) -> list[int]:
    psutil = require("psutil", "psutil")
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return [pid]
    return [pid, *(child.pid for child in children)]


def _thread_times(pid: int) -> dict[tuple[int, int], float] | None:
    """Seconds on a CPU per (process, thread), or ``None`` without per-thread schedstat."""
    times: dict[tuple[int, int], float] = {}
    for process in _process_ids(pid):
        tasks = Path(f"/proc/{process}/task")
        if not tasks.is_dir():
            return None
        for task in tasks.iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                on_cpu_ns = int((task / "schedstat").read_text().split()[0])
                times[(process, int(task.name))] = on_cpu_ns / NANOSECONDS
    return times


def _psutil_seconds(pid: int) -> float:
    psutil = require("psutil", "psutil")
    total = 0.0
    for process in _process_ids(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(process).cpu_times()
            total += times.user + times.system
    return total


class CpuMeter:
    """CPU seconds the process ``pid`` (with its children) used since the meter was made.

    Not thread-safe; one meter per measured workload.
    """

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._threads = _thread_times(pid)
        self._fallback = _psutil_seconds(pid) if self._threads is None else 0.0

    def seconds(self) -> float:
        if self._threads is None:
            return max(0.0, _psutil_seconds(self._pid) - self._fallback)
        now = _thread_times(self._pid) or {}
        return sum(
            max(0.0, seconds - self._threads.get(thread, 0.0)) for thread, seconds in now.items()
        )
