"""Response bodies under a broker-wide byte budget, written with backpressure.

Why.  A fetch or stream answer is built in memory and handed to the
connection. aiohttp's ``web.Response`` hands the whole body to the transport
at once, and the transport keeps whatever the client has not read yet: 16 SSE
streams that never read took a broker from 55 MiB to 4 GiB of RSS, and 24
fetches of 64 MiB to 3 GiB, still held after the clients left.

What.

* :class:`ResponseBudget` counts the bytes of large bodies (fetches, group
  fetches, stream batches) from when they are built until their last byte is
  in the transport below its high-water mark, or the connection is gone. A
  body reserves its bytes the moment it is built, in the same event-loop step
  as the read that produced it, so nothing is counted while a long-poll waits.
  A fetch that does not fit is served smaller: the records that fit the room,
  or, with the budget spent, those that fit a small answer (below), which
  needs no budget; the client goes on from ``next_offset``, as after any
  fetch limit. Only a first record too large for a small answer, with the
  budget spent, is answered ``503 RESPONSE_BUFFER_FULL`` with ``Retry-After:
  1``. A group fetch has handed its records out once it has read them, so it
  reads no more than the room (or a small answer) and is counted even where
  that passes the limit. A stream puts a batch that does not fit back and
  waits for room. When nothing else is reserved, anything fits, so a budget
  smaller than one record still makes progress.
* :func:`send_body` writes in :data:`CHUNK_BYTES` pieces and waits for the
  transport to drain after each (aiohttp's ``StreamResponse.write`` does), so
  the transport holds at most its high-water mark plus one piece; a client
  that takes nothing for ``write_timeout_s`` is dropped with ``abort()``
  (``close()`` would keep the unsent bytes until they are sent, i.e. forever).
* Memory comes back once the readers are gone. Two things kept it. A failed
  write's error sits in a reference cycle whose traceback holds the frames
  with the body in their locals, until a garbage collection an idle broker
  may not run for a long time: two 64 MiB bodies of dropped fetches stayed;
  :func:`write_pieces` lets go of the traceback at once. And glibc keeps the
  freed heap for reuse (the broker asks it to, :mod:`minimq.server.tuning`):
  so once the budget has been idle for :data:`TRIM_IDLE_S` after large
  bodies, the free memory goes back to the kernel (``malloc_trim``). Measured
  after 8 fetches of 16 MiB and after 8 streams that never read: RSS 116 and
  73 MiB after they left without it (83 and 55 MiB before the attack), 50
  and 52 MiB with it; ``MALLOC_ARENA_MAX=2`` changed nothing (the bodies are
  all built on the event-loop thread, in one arena), nor did a garbage
  collection before the trim. Under steady load the memory is reused instead.

Bodies up to :data:`DIRECT_BYTES` bypass all of this and go out as plain
aiohttp answers: the kernel's socket buffer takes most of one at once, and a
connection holds at most its transport's high-water mark besides (aiohttp
waits for the transport to drain before it reads the next request), so the
connection caps bound them (:mod:`minimq.server.connection_limit`).

Concurrency: event-loop thread only; the counters are plain ints for that reason.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Final

import orjson
from aiohttp import hdrs, web

from minimq.errors import ResponseBufferFull

# Large enough that a fast reader costs few wake-ups; a reader must take one piece
# per write timeout to stay connected.
CHUNK_BYTES: Final = 1024 * 1024
DIRECT_BYTES: Final = 64 * 1024
TRIM_IDLE_S: Final = 1.0
# Bodies freed since the last trim before another is worth its cost.
TRIM_AFTER_BYTES: Final = 4 * 1024 * 1024


class ResponseBudget:
    """At most ``limit`` bytes of large response bodies built and not yet sent, broker-wide."""

    def __init__(
        self,
        limit: int,
        write_timeout_s: float,
        release_memory: Callable[[], object] = lambda: None,
    ) -> None:
        self.limit = limit
        self.write_timeout_s = write_timeout_s
        self.used = 0
        self.dropped_readers = 0
        self.refusals = 0
        self._release_memory = release_memory
        self._waiters: list[asyncio.Future[None]] = []
        self._freed_since_trim = 0
        self._last_reserved = 0.0
        self._trim_timer: asyncio.TimerHandle | None = None

    @property
    def room(self) -> int:
        return max(0, self.limit - self.used)

    def reserve(self, size: int) -> bool:
        """Reserve ``size`` bytes if they fit (or nothing else is reserved); pair with release()."""
        if self.used and self.used + size > self.limit:
            return False
        self._take(size)
        return True

    def reserve_prefix(self, sizes: Sequence[int], fixed: int) -> int:
        """Reserve ``fixed`` plus the longest prefix of ``sizes`` that fits; return its length.

        Returns 0, reserving nothing, when not even the first piece fits and
        something else is reserved. The reservation is ``fixed + sum(prefix)``.
        """
        count = prefix_within(sizes, fixed, self.limit - self.used)
        if not count:
            if self.used or not sizes:
                return 0
            count = 1  # alone, one piece goes out whatever its size: progress
        self._take(fixed + sum(sizes[:count]))
        return count

    def force(self, size: int) -> None:
        """Count ``size`` bytes that are built already and must be sent (a group fetch)."""
        self._take(size)

    def release(self, size: int) -> None:
        self.used -= size
        self._freed_since_trim += size
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if not self.used and self._freed_since_trim >= TRIM_AFTER_BYTES:
            self._schedule_trim()

    async def wait_for_room(self, timeout_s: float) -> None:
        """Return after the next release, or after ``timeout_s``."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout_s)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def refuse(self) -> ResponseBufferFull:
        self.refusals += 1
        return ResponseBufferFull(
            f"{self.used} bytes of responses wait for slow readers (the limit is {self.limit});"
            " retry shortly"
        )

    def _take(self, size: int) -> None:
        self.used += size
        self._last_reserved = time.monotonic()

    def _schedule_trim(self) -> None:
        if self._trim_timer is None:
            self._trim_timer = asyncio.get_running_loop().call_later(TRIM_IDLE_S, self._trim)

    def _trim(self) -> None:
        # Only once the budget has been idle a while: under steady load the
        # freed memory is about to be reused, and giving it back would make
        # every new body page-fault it in again.
        self._trim_timer = None
        idle_for = time.monotonic() - self._last_reserved
        if self.used or idle_for < TRIM_IDLE_S:
            if self._freed_since_trim >= TRIM_AFTER_BYTES:
                self._schedule_trim()
            return
        self._freed_since_trim = 0
        self._release_memory()


def prefix_within(sizes: Sequence[int], fixed: int, limit: int) -> int:
    """How many leading ``sizes`` fit in ``limit`` together with ``fixed``."""
    totals = list(itertools.accumulate(sizes, initial=fixed))
    return max(0, bisect.bisect_right(totals, limit) - 1)


async def send_body(
    request: web.Request,
    response: web.StreamResponse,
    body: bytes,
    budget: ResponseBudget,
    reserved: int,
) -> web.StreamResponse:
    """Send ``body`` as the whole of ``response``, then release ``reserved`` bytes of ``budget``.

    Returns ``response`` (prepared) either way; a client that stopped reading
    has had its connection dropped by then.
    """
    try:
        response.content_length = len(body)
        await response.prepare(request)
        # A StreamResponse writes what it is given, even to HEAD (web.Response would not).
        if request.method != hdrs.METH_HEAD:
            await write_pieces(request, response, body, budget)
    finally:
        budget.release(reserved)
    return response


async def write_pieces(
    request: web.Request, response: web.StreamResponse, data: bytes, budget: ResponseBudget
) -> bool:
    """Write ``data`` with backpressure; False (connection gone) if the client stopped reading."""
    view = memoryview(data)
    timeout = budget.write_timeout_s
    try:
        for start in range(0, len(data), CHUNK_BYTES):
            async with asyncio.timeout(timeout):
                await response.write(view[start : start + CHUNK_BYTES])
    except TimeoutError as exc:
        _let_go_of_frames(exc)
        budget.dropped_readers += 1
        transport = request.transport
        if transport is not None:
            transport.abort()
        return False
    except ConnectionError as exc:
        _let_go_of_frames(exc)
        return False
    return True


def _let_go_of_frames(error: BaseException | None) -> None:
    """Drop the tracebacks of ``error`` and the errors behind it.

    The error a failed write raises sits in a reference cycle (the drain
    waiter's future holds it, its traceback holds the frame that awaited the
    future), and the traceback also holds the frames of this write and of its
    callers, with the body in their locals. The garbage collector would break
    the cycle only at its next run, which an idle broker, with its raised GC
    thresholds (:mod:`minimq.server.tuning`), may not do for a long time:
    measured, the two 64 MiB bodies of dropped fetches stayed in memory.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


async def send_json(
    request: web.Request, budget: ResponseBudget, payload: object
) -> web.StreamResponse:
    """``payload`` as a JSON answer; a large one counted in ``budget`` and sent with backpressure.

    For answers that must go out once built (a group fetch has moved its
    member's positions by then): the bytes are counted even past the limit.
    """
    body = orjson.dumps(payload)
    if len(body) <= DIRECT_BYTES:
        return web.Response(body=body, content_type="application/json")
    budget.force(len(body))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    return await send_body(request, response, body, budget, len(body))
