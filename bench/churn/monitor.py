"""The monitor: a thread sampling ``describe_group`` every ~200 ms.

Each ``sample`` line holds ``members`` (how many), the group's ``generation``
and ``state``, and ``offsets``
``[[partition, committed offset or null, end offset, lag], ...]``; the checker
asks of them that no partition's committed offset ever goes backwards.  A
group that does not exist yet (before the first join) or a failed request
gives no sample.  Given several broker URLs it asks the first, and the
next when one fails (the client's failover).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from bench.churn.history import HistoryWriter

from minimq.client import Client, GroupInfo
from minimq.errors import MiniMQError


def offsets_of(info: GroupInfo, topic: str) -> list[list[int | None]]:
    """``[[partition, committed, end, lag], ...]`` of ``topic`` in partition order."""
    return sorted(
        [entry.partition, entry.committed_offset, entry.end_offset, entry.lag]
        for entry in info.offsets
        if entry.topic == topic
    )


class GroupMonitor:
    """Samples ``group`` on ``topic`` into ``history`` until :meth:`stop`."""

    def __init__(
        self,
        urls: Sequence[str],
        group: str,
        topic: str,
        history: HistoryWriter,
        interval_s: float = 0.2,
    ) -> None:
        self.urls = list(urls)
        self.group = group
        self.topic = topic
        self.history = history
        self.interval_s = interval_s
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="churn-monitor", daemon=True)

    def start(self) -> GroupMonitor:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the group monitor did not stop")

    def _run(self) -> None:
        with Client(self.urls, retries=0, timeout=5.0) as client:
            while not self._stop.wait(self.interval_s):
                try:
                    info = client.describe_group(self.group)
                except MiniMQError:
                    continue
                self.history.write(
                    "sample",
                    members=len(info.members),
                    generation=info.generation,
                    state=info.state,
                    offsets=offsets_of(info, self.topic),
                )
                self.samples += 1
