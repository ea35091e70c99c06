"""What producers were told, what the log holds afterwards, and the verdict on the two.

Every record a fault test produces carries a unique id (``"p<producer>-<request>-<n>"``) in its
value.  :class:`ProduceHistory` keeps, per acknowledged record, the offset the broker answered
with, and the wall of every acknowledgement, so a checker can afterwards compare that history
with the partition as read back:

- **lost**: acknowledged, but not in the log (or at another offset than acknowledged);
- **duplicated**: one id stored at more than one offset (a retry stored twice);
- **contiguous**: the offsets read are exactly ``start .. end-1``, no hole, none twice;
- **longest gap**: the longest time between two consecutive acknowledgements (any producer):
  how long the service was out, as a client saw it.

Unacknowledged records that were stored anyway (an answer lost to a fault) are fine: the
producer did not learn their outcome.  They are counted as ``unacknowledged_stored``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from minimq.client import Client


@dataclass
class ProduceHistory:
    """Thread-safe record of acknowledgements (id -> offset) and of failed attempts."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retried_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acked(self, ids: Sequence[str], offsets: Sequence[int], *, retried: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self.requests += 1
            self.retried_requests += retried
            for record_id, offset in zip(ids, offsets, strict=True):
                if record_id in self.acknowledged:
                    raise AssertionError(f"{record_id} acknowledged twice")
                self.acknowledged[record_id] = offset
            self.ack_times.append(now)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures[type(exc).__name__] += 1

    def acks_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for t in self.ack_times if start <= t < end)

    def longest_gap(self, start: float | None = None, end: float | None = None) -> float:
        """Longest time without any acknowledgement within ``[start, end]`` (the ends count)."""
        with self._lock:
            times = sorted(self.ack_times)
        lo = times[0] if start is None else start
        hi = times[-1] if end is None else end
        points = [lo, *(t for t in times if lo < t < hi), hi]
        return max((b - a for a, b in itertools.pairwise(points)), default=0.0)


@dataclass(frozen=True)
class Verdict:
    acknowledged: int
    stored: int
    lost: list[str]
    misplaced: list[tuple[str, int, int]]  # id, acknowledged offset, stored offset
    duplicated: dict[str, list[int]]
    unacknowledged_stored: int
    contiguous: bool
    first_offset: int
    end_offset: int

    def summary(self) -> str:
        return (
            f"acknowledged={self.acknowledged} stored={self.stored} lost={len(self.lost)}"
            f" misplaced={len(self.misplaced)} duplicated={len(self.duplicated)}"
            f" unacknowledged_stored={self.unacknowledged_stored}"
            f" contiguous={self.contiguous} offsets={self.first_offset}..{self.end_offset}"
        )


def judge(acknowledged: dict[str, int], stored: Iterable[tuple[int, Any]]) -> Verdict:
    """Compare acknowledged ``id -> offset`` with the ``(offset, value)`` pairs read back."""
    offsets_of: dict[str, list[int]] = {}
    offsets: list[int] = []
    for offset, value in stored:
        offsets.append(offset)
        record_id = value.get("id") if isinstance(value, dict) else None
        if isinstance(record_id, str):
            offsets_of.setdefault(record_id, []).append(offset)
    lost = sorted(i for i in acknowledged if i not in offsets_of)
    misplaced = sorted(
        (i, acknowledged[i], offsets_of[i][0])
        for i in acknowledged
        if i in offsets_of and acknowledged[i] not in offsets_of[i]
    )
    duplicated = {i: o for i, o in offsets_of.items() if len(o) > 1}
    first = offsets[0] if offsets else 0
    end = offsets[-1] + 1 if offsets else 0
    return Verdict(
        acknowledged=len(acknowledged),
        stored=len(offsets),
        lost=lost,
        misplaced=misplaced,
        duplicated=duplicated,
        unacknowledged_stored=len(set(offsets_of) - set(acknowledged)),
        contiguous=offsets == list(range(first, end)),
        first_offset=first,
        end_offset=end,
    )


def read_partition(
    urls: str | Sequence[str], topic: str, partition: int = 0
) -> list[tuple[int, Any]]:
    """Every ``(offset, value)`` of one partition, from offset 0 to the high watermark."""
    stored: list[tuple[int, Any]] = []
    with Client(urls, timeout=30, retries=10) as client:
        offset = 0
        while True:
            page = client.fetch(topic, partition, offset=offset, limit=1000)
            stored.extend((r.offset, r.value) for r in page.records)
            if page.next_offset >= page.high_watermark:
                return stored
            offset = page.next_offset
