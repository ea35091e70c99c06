"""A cap on open client connections, enforced when a connection is accepted.

aiohttp's request handlers only run once a request's headers are complete, so
a limit enforced in middleware cannot see connections that are still sending
(or trickling) their headers — the slow-loris attack.  :class:`ConnectionLimiter`
wraps the aiohttp protocol factory that ``loop.create_server`` calls for each
accepted connection: while ``limit`` connections are open, a new one gets a
``503 TOO_MANY_CONNECTIONS`` JSON answer and is closed, without ever reaching
aiohttp.

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

# Answer once the request starts arriving (or after this long), so the client
# is not still sending when the answer goes out.
REFUSAL_GRACE_S: Final = 1.0
# Then keep reading and discarding for up to this long: closing a socket with
# unread input sends a reset, which can destroy the answer before it is read.
LINGER_S: Final = 2.0
_BODY = orjson.dumps(
    {"error": {"code": "TOO_MANY_CONNECTIONS", "message": "too many open connections"}}
)
REFUSAL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s" % (len(_BODY), _BODY)
)


class _RefuseConnection(asyncio.Protocol):
    """Answers 503 to whatever arrives first (or after a grace period), then closes."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_GRACE_S, self._refuse)

    def data_received(self, data: bytes) -> None:
        if not self._answered:
            self._refuse()

    def eof_received(self) -> bool:
        if not self._answered:
            self._refuse()
        return False  # the client is done sending: close once the answer is out

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport = None

    def _refuse(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._answered = True
        if self._timer is not None:
            self._timer.cancel()
        transport.write(REFUSAL)
        if transport.can_write_eof():
            transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(LINGER_S, transport.close)


class ConnectionLimiter:
    """The protocol factory for ``loop.create_server``, up to ``limit`` connections.

    A connection starts in the produce lane (:mod:`minimq.server.produce_lane`),
    which hands it to aiohttp's handler (with JSON errors, see
    :mod:`minimq.server.protocol_errors`) for anything but small produces; the
    limit counts the connections of both.
    """

    def __init__(self, server: web.Server, lane: ProduceLane, limit: int) -> None:
        self._server = server
        self._lane = lane
        self._limit = limit
        self._aiohttp_handler = functools.partial(request_handler, server)

    def __call__(self) -> asyncio.BaseProtocol:
        if len(self._server.connections) + len(self._lane.connections) >= self._limit:
            return _RefuseConnection()
        return self._lane.connection(self._aiohttp_handler)
