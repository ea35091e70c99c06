"""Per-partition shared/exclusive gate for this process's appends.

An append of at most 1,000 records is one atomic batch, contiguous whatever else is written,
so any number of them run at once (*shared*).  A longer append is several batches chained by
``Nats-Expected-Last-Sequence``; while it runs, no other append of this process may slip
between its batches, so it runs alone (*exclusive*).  Writers are preferred: once an exclusive
append waits, new shared appends queue behind it, so a long append is never starved.

Not thread-safe: one event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AppendGate:
    """Shared (single-batch appends) or exclusive (multi-batch appends) access."""

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._exclusive and self._exclusive_waiting == 0
            )
            self._shared += 1
        try:
            yield
        finally:
            async with self._changed:
                self._shared -= 1
                self._changed.notify_all()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._changed:
            self._exclusive_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._exclusive and self._shared == 0)
            finally:
                self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            async with self._changed:
                self._exclusive = False
                self._changed.notify_all()
