"""Per-partition "new data" notifications for long-polls and live streams.

A waiter takes the partition's current future and awaits it; the producer
resolves and replaces it after every append. Because the event loop runs one
callback at a time, a waiter that checks the end offset and then calls
:meth:`PartitionSignals.wait_any` without awaiting in between cannot miss an
append. Waiters are woken in the same loop iteration as the append returns,
so wake latency is one scheduling hop, not a polling interval.

Not thread-safe: every method must be called from the event loop thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable

# Partitions are keyed (topic, partition); other keys (a group's rebalance) work alike.
SignalKey = Hashable


class PartitionSignals:
    def __init__(self) -> None:
        self._futures: dict[SignalKey, asyncio.Future[None]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def notify(self, key: SignalKey) -> None:
        """Wake every waiter of ``key`` (called after an append to it)."""
        future = self._futures.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)

    def notify_all(self) -> None:
        for key in list(self._futures):
            self.notify(key)

    def close(self) -> None:
        """Wake every waiter now and make later waits return immediately (shutdown)."""
        self._closed = True
        self.notify_all()

    async def wait_any(self, keys: Iterable[SignalKey], timeout: float) -> bool:
        """Wait until one of ``keys`` is notified or ``timeout`` seconds pass.

        Returns True when woken by a notification, False on timeout or shutdown.
        """
        if self._closed or timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        futures = []
        for key in keys:
            future = self._futures.get(key)
            if future is None:
                future = loop.create_future()
                self._futures[key] = future
            futures.append(future)
        if not futures:
            return False
        # The futures are shared by every waiter, so they are never cancelled
        # here: asyncio.wait leaves them alone when it times out.
        done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return bool(done) and not self._closed
