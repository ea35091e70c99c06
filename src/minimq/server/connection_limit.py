"""A cap on open client connections, enforced when a connection is accepted.

aiohttp's request handlers only run once a request's headers are complete, so
a limit enforced in middleware cannot see connections that are still sending
(or trickling) their headers — the slow-loris attack.  :class:`ConnectionLimiter`
wraps the aiohttp protocol factory that ``loop.create_server`` calls for each
accepted connection: while ``limit`` connections are open, a new one gets a
``503 TOO_MANY_CONNECTIONS`` JSON answer and is closed, without ever reaching
aiohttp.

A refusal holds a descriptor too, so refusals are bounded as well: the answer
is written the moment the connection is accepted, the sending side is shut,
and the socket is closed when the client closes its own, or after
:data:`LINGER_S`. At most :data:`REFUSAL_BUDGET` refusals wait like that at
once; beyond it, a refused connection is closed as soon as it is accepted.
So however many clients connect, the broker holds at most
``limit + REFUSAL_BUDGET`` client sockets, besides those it is closing in the
loop step that accepted them.

Concurrency: runs on the event-loop thread only (asyncio protocol callbacks).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Final, cast

import orjson
from aiohttp import web

from minimq.server.produce_lane import ProduceLane
from minimq.server.protocol_errors import request_handler

# After the answer, keep reading and discarding for up to this long before
# closing: closing a socket with unread input sends a reset, which can destroy
# the answer before the client has read it. A client that reads the answer and
# closes ends the wait at once.
LINGER_S: Final = 1.0
# Refusals lingering at once; more are closed without waiting. Well-behaved
# clients close on the answer within a round trip, so only a flood fills this.
REFUSAL_BUDGET: Final = 64
_BODY = orjson.dumps(
    {"error": {"code": "TOO_MANY_CONNECTIONS", "message": "too many open connections"}}
)
REFUSAL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s" % (len(_BODY), _BODY)
)


class _RefuseConnection(asyncio.Protocol):
    """Answers 503 at once, then lingers (while ``lingering`` has room) or closes."""

    def __init__(self, lingering: set[_RefuseConnection]) -> None:
        self._lingering = lingering
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        stream = cast(asyncio.Transport, transport)
        # Even when closing at once: the answer costs no descriptor (the kernel
        # sends it after the close), and a client that has not sent its request
        # yet still reads it.
        stream.write(REFUSAL)
        if len(self._lingering) >= REFUSAL_BUDGET or not stream.can_write_eof():
            stream.close()
            return
        self._lingering.add(self)
        stream.write_eof()
        self._timer = asyncio.get_running_loop().call_later(LINGER_S, stream.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request, or whatever else: the answer is out already

    def eof_received(self) -> bool:
        return False  # the client is done too: close now

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._lingering.discard(self)


class ConnectionLimiter:
    """The protocol factory for ``loop.create_server``, up to ``limit`` connections.

    A connection starts in the produce lane (:mod:`minimq.server.produce_lane`),
    which hands it to aiohttp's handler (with JSON errors, see
    :mod:`minimq.server.protocol_errors`) for anything but small produces; the
    limit counts the connections of both, and refusals have a budget of their
    own (see the module docstring).

    Both counts grow in ``connection_made``, not here. That is exact on uvloop,
    which the broker runs on: libuv accepts one connection per loop iteration
    and the connection is made before the next is accepted.
    """

    def __init__(self, server: web.Server, lane: ProduceLane, limit: int) -> None:
        self._server = server
        self._lane = lane
        self._limit = limit
        self._aiohttp_handler = functools.partial(request_handler, server)
        self._refusals: set[_RefuseConnection] = set()

    def __call__(self) -> asyncio.BaseProtocol:
        if len(self._server.connections) + len(self._lane.connections) >= self._limit:
            return _RefuseConnection(self._refusals)
        return self._lane.connection(self._aiohttp_handler)
