"""Per-partition "new data" notifications for long-polls and live streams.

A waiter takes the partition's current future and awaits it; the storage
backend's append listener resolves and replaces it after every stored append
(:meth:`~minimq.core.storage_seam.Storage.add_append_listener`). A waiter
that *arms* its keys (:meth:`PartitionSignals.arm`) before it asks for the
end offset cannot miss an append, even when asking suspends (a backend over
the network): a notification after the arming resolves the armed future.
Waiters are woken in the same loop iteration as the notification, so wake
latency is one scheduling hop, not a polling interval.

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

    def arm(self, keys: Iterable[SignalKey]) -> list[asyncio.Future[None]]:
        """The futures the next notification of each of ``keys`` resolves.

        Take them before checking for data, then :meth:`wait_armed` on them.
        """
        loop = asyncio.get_running_loop()
        futures = []
        for key in keys:
            future = self._futures.get(key)
            if future is None:
                future = loop.create_future()
                self._futures[key] = future
            futures.append(future)
        return futures

    async def wait_any(self, keys: Iterable[SignalKey], timeout: float) -> bool:
        """Wait until one of ``keys`` is notified or ``timeout`` seconds pass.

        Returns True when woken by a notification, False on timeout or shutdown.
        """
        return await self.wait_armed(self.arm(keys), timeout)

    async def wait_armed(self, futures: list[asyncio.Future[None]], timeout: float) -> bool:
        """Wait until one of the :meth:`arm`-ed ``futures`` is resolved or ``timeout`` s pass.

        Returns True when woken by a notification, False on timeout or shutdown.
        """
        if self._closed or timeout <= 0 or not futures:
            return False
        # The futures are shared by every waiter, so they are never cancelled
        # here: asyncio.wait leaves them alone when it times out.
        done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return bool(done) and not self._closed
