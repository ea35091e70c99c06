"""History files: one JSON object per line, appended and flushed one line at a time.

Every process of a churn run (each member, the producers, the monitor, the
driver) writes its own file, so no two writers share one.  A line is written
with a single ``write`` and flushed at once: the kernel holds it as soon as
``write`` returns, so a SIGKILL loses at most the line being written, and
:func:`read_history` drops a torn last line.  A torn line anywhere else means
the file is not what a writer left and is an error.

Each line carries ``t`` (``time.time()``: every process runs on one machine,
so times of different files compare) and ``event``; the other fields depend
on the event and are described where the event is written (``member.py``,
``producers.py``, ``monitor.py``, ``driver.py``).  Pairs such as
``(partition, offset)`` are JSON arrays, never objects, because JSON object
keys would turn partition numbers into strings.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson

Event = dict[str, Any]


class HistoryWriter:
    """Appends events to one file (thread-safe: the lock keeps lines whole)."""

    def __init__(self, path: Path, **common: Any) -> None:
        self.path = path
        self._common = common
        self._lock = threading.Lock()
        self._file = path.open("ab", buffering=0)

    def write(self, event: str, **fields: Any) -> float:
        """Append one line now; returns its time."""
        now = time.time()
        line = orjson.dumps({"t": now, "event": event, **self._common, **fields}) + b"\n"
        with self._lock:
            self._file.write(line)
        return now

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_history(path: Path) -> list[Event]:
    """Every whole line of ``path`` (a missing file has none)."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        try:
            events.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            if number == len(lines):
                break  # the line a SIGKILL interrupted
            raise ValueError(f"{path}:{number}: not a JSON line: {line[:80]!r}") from None
    return events
