"""A broker-wide budget of request bytes read and not yet handled.

Every Kafka request frame reserves its size before its body is read and
gives it back once its handler has finished, so the request bytes held in
memory, over all connections together, stay under the limit however many
clients send large frames at once. A frame waits (and its connection reads
nothing more) until it fits; a frame larger than the whole budget is let in
when nothing else is reserved, so any frame the size limit allows makes
progress. Waiters are served first come, first served.

Concurrency: event-loop thread only.
"""

from __future__ import annotations

import asyncio
import collections


class ByteBudget:
    """At most ``limit`` bytes reserved at once (or one reservation of any size)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reserved = 0
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, size: int) -> bool:
        return self.reserved == 0 or self.reserved + size <= self.limit

    async def reserve(self, size: int) -> None:
        """Wait until ``size`` bytes fit, then reserve them; pair with :meth:`release`."""
        if not self._waiting and self._fits(size):
            self.reserved += size
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append((size, waiter))
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted just as the wait was cancelled
            else:
                self._waiting.remove((size, waiter))
                self._grant()
            raise

    def release(self, size: int) -> None:
        self.reserved -= size
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            size, waiter = self._waiting.popleft()
            self.reserved += size
            waiter.set_result(None)
