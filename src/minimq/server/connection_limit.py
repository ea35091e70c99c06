"""Admission of client connections: caps, a reserve, and a deadline for the first request.

aiohttp's request handlers only run once a request's headers are complete, so
limits enforced in middleware cannot see connections that are still sending
(or trickling, or never sending) their headers. :class:`ConnectionLimiter` is
the protocol factory that ``loop.create_server`` calls for each accepted
connection, so it sees every one, and it enforces, per connection:

* **A deadline for the first request head** (``head_timeout_s``, nginx's
  ``client_header_timeout``): a connection that has not sent one complete
  request head within it gets ``408 REQUEST_TIMEOUT`` and is closed. Later
  requests on a keep-alive connection fall under the keep-alive timeout.
* **At most ``limit`` connections** in all, and **at most ``per_address``
  from one client address** (counting connections that have not proved they
  hold the token).
* **A reserve.** Connections are placed by their first request. One that
  presents the bearer token is *trusted* and may use any of the ``limit``;
  any other may use only ``limit - reserved``. Beyond that share, its request
  is refused (``503 TOO_MANY_CONNECTIONS``), unless it asks for ``/healthz``,
  which is answered and the connection closed: a monitor gets its answer, and
  an attacker cannot park connections in the reserve. Without a token
  configured nobody is trusted, and the reserve serves ``/healthz`` only.
* **Evicting the unplaced.** A connection that has not sent a complete head
  yet holds nothing anyone could be asked to wait for: when a new connection
  finds the broker, or its own address, at its cap, a waiting connection (of
  that address, when the address is full) is answered 503 and closed to make
  room: the oldest one that has sent part of a head, or else the oldest that
  has sent nothing for :data:`SILENT_GRACE_S` (see :class:`_Waiting`). So
  connections that trickle or stall after a byte can never lock anyone out:
  a client sends its request as soon as it has connected (every HTTP client
  does), and is placed before it could be evicted. Only connections that
  send nothing at all, opened faster than ``limit`` per
  :data:`SILENT_GRACE_S`, can keep newcomers out, and from one address
  only ``per_address`` of them.

The states of a connection's :class:`ConnectionSlot`::

    accepted --> PENDING --complete head--> HEAD --placed--> GENERAL | TRUSTED
                    |                             `--over the share--> CLOSING (answered once)
                    `--deadline (408) / evicted (503)--> released
    any state --connection closed--> released

A connection is refused at once (``503 TOO_MANY_CONNECTIONS``) only when its
cap is reached and nothing can be evicted. A refusal holds a descriptor too,
so refusals are bounded as well: the answer is written the moment the
connection is accepted, the sending side is shut, and the socket is closed
when the client closes its own, or after :data:`LINGER_S`. At most
:data:`REFUSAL_BUDGET` refusals wait like that at once; beyond it, a refused
connection is closed as soon as it is accepted. So however many clients
connect, the broker holds at most ``limit + REFUSAL_BUDGET`` client sockets,
besides those it is closing in the loop step that accepted them.

Admitted connections start in the produce lane (:mod:`minimq.server.produce_lane`),
which hands them to aiohttp's handler (with JSON errors, see
:mod:`minimq.server.protocol_errors`) for anything but small produces; the
slot goes with the connection, and whichever holds it reports the first
head (the lane, or the middleware for aiohttp) and the end.

Concurrency: runs on the event-loop thread only (asyncio protocol callbacks).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, cast

import orjson
from aiohttp import web

from minimq.errors import Unauthorized
from minimq.server.gate import OPEN_PATHS, RequestGate
from minimq.server.protocol_errors import request_handler

if TYPE_CHECKING:
    from minimq.server.produce_lane import ProduceLane

# After the answer, keep reading and discarding for up to this long before
# closing: closing a socket with unread input sends a reset, which can destroy
# the answer before the client has read it. A client that reads the answer and
# closes ends the wait at once.
LINGER_S: Final = 1.0
# Refusals lingering at once; more are closed without waiting. Well-behaved
# clients close on the answer within a round trip, so only a flood fills this.
REFUSAL_BUDGET: Final = 64
# A connection that has sent nothing is evictable only after this long.
SILENT_GRACE_S: Final = 1.0

# ConnectionSlot states.
PENDING: Final = 0  # accepted; no complete request head yet (evictable, on the deadline)
HEAD: Final = 1  # a complete head arrived; its request is not placed yet
GENERAL: Final = 2  # placed without the token, within the general share
TRUSTED: Final = 3  # its first request carried the token
CLOSING: Final = 4  # beyond the general share: answered once, then closed
RELEASED: Final = 5  # closed; counted nowhere

# What the holder of a connection does with its first request (ConnectionSlot.place).
SERVE: Final = 0
SERVE_THEN_CLOSE: Final = 1
REFUSE: Final = 2
# The message of a first request refused beyond the general share.
SHARE_FULL: Final = (
    "too many open connections; the rest are reserved for clients with the token and /healthz"
)


def _answer(status: bytes, code: str, message: str, retry: bool) -> bytes:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    retry_after = b"Retry-After: 1\r\n" if retry else b""
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s"
        b"Connection: close\r\n\r\n%s" % (status, len(body), retry_after, body)
    )


REFUSAL: Final = _answer(
    b"503 Service Unavailable", "TOO_MANY_CONNECTIONS", "too many open connections", True
)
ADDRESS_REFUSAL: Final = _answer(
    b"503 Service Unavailable",
    "TOO_MANY_CONNECTIONS",
    "too many open connections from this client address",
    True,
)


class _RefuseConnection(asyncio.Protocol):
    """Answers at once, then lingers (while ``lingering`` has room) or closes."""

    def __init__(self, lingering: set[_RefuseConnection], answer: bytes) -> None:
        self._lingering = lingering
        self._answer = answer
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        stream = cast(asyncio.Transport, transport)
        # Even when closing at once: the answer costs no descriptor (the kernel
        # sends it after the close), and a client that has not sent its request
        # yet still reads it.
        stream.write(self._answer)
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


class _Admission(asyncio.Protocol):
    """The protocol ``create_server`` starts a connection with: admit it, then step aside."""

    def __init__(self, limiter: ConnectionLimiter) -> None:
        self._limiter = limiter

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._limiter.admit(cast(asyncio.Transport, transport))


class _Waiting:
    """Connections without a complete head yet, oldest first, in the order they may be evicted.

    First those that have sent part of a head (whatever their age: a client
    sends its head as soon as it has connected, so part of one is a slow
    client), then those that have sent nothing for :data:`SILENT_GRACE_S`.
    A connection accepted moments ago is never evicted: its head may be in
    the socket already, unread, behind connections accepted in the same
    event-loop step.
    """

    __slots__ = ("partial", "silent")

    def __init__(self) -> None:
        self.partial: dict[ConnectionSlot, None] = {}
        self.silent: dict[ConnectionSlot, None] = {}

    def __bool__(self) -> bool:
        return bool(self.partial or self.silent)

    def add(self, slot: ConnectionSlot) -> None:
        self.silent[slot] = None

    def heard_from(self, slot: ConnectionSlot) -> None:
        if self.silent.pop(slot, 0) is None:
            self.partial[slot] = None

    def remove(self, slot: ConnectionSlot) -> None:
        self.silent.pop(slot, None)
        self.partial.pop(slot, None)

    def evictable(self, now: float) -> ConnectionSlot | None:
        if self.partial:
            return next(iter(self.partial))
        if self.silent:
            oldest = next(iter(self.silent))
            if oldest.accepted_at <= now - SILENT_GRACE_S:
                return oldest
        return None


class ConnectionSlot:
    """One admitted connection's place in the limiter's counts (see the module docstring)."""

    __slots__ = ("_deadline", "_limiter", "accepted_at", "address", "heard", "state", "transport")

    def __init__(
        self, limiter: ConnectionLimiter, address: str, transport: asyncio.Transport, now: float
    ) -> None:
        self._limiter = limiter
        self.address = address
        self.transport = transport
        self.accepted_at = now
        self.state = PENDING
        self.heard = False
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def placed(self) -> bool:
        """Whether its first request has been placed (or it is gone): nothing more to report."""
        return self.state >= GENERAL

    def data_received(self) -> None:
        """Bytes arrived before the head was complete: evicted before silent connections."""
        if self.state == PENDING and not self.heard:
            self.heard = True
            self._limiter.heard_from(self)

    def head_received(self) -> None:
        """A complete request head is in hand: the deadline is met, no more evictable."""
        if self.state == PENDING:
            self._limiter.head_received(self)

    def place(self, path: str, authorization: bytes) -> int:
        """Place the connection by its first request: SERVE, SERVE_THEN_CLOSE or REFUSE."""
        self.head_received()
        return self._limiter.place(self, path, authorization)

    def release(self) -> None:
        """The connection is closed (idempotent)."""
        self._limiter.release(self)

    def expire(self) -> None:
        self._deadline = None
        if self.state == PENDING:
            self._limiter.close_slot(self, self._limiter.head_timeout_answer)


class ConnectionLimiter:
    """The protocol factory for ``loop.create_server`` (see the module docstring)."""

    def __init__(
        self,
        server: web.Server,
        lane: ProduceLane,
        limit: int,
        *,
        per_address: int | None = None,
        reserved: int = 0,
        head_timeout_s: float = 10.0,
        gate: RequestGate | None = None,
    ) -> None:
        self._server = server
        self._lane = lane
        self.limit = limit
        self.per_address = per_address or limit
        # At most half: the general share must stay usable.
        self.reserved = min(reserved, limit // 2)
        self.head_timeout_s = head_timeout_s
        self._gate = gate
        self.head_timeout_answer = _answer(
            b"408 Request Timeout",
            "REQUEST_TIMEOUT",
            f"no complete request head within {head_timeout_s:g}s",
            False,
        )
        self.connections = 0
        self.general = 0
        self._by_address: dict[str, int] = {}
        # Connections without a complete head, broker-wide and per address.
        self._waiting = _Waiting()
        self._waiting_by_address: dict[str, _Waiting] = {}
        self._refusals: set[_RefuseConnection] = set()

    def __call__(self) -> asyncio.BaseProtocol:
        return _Admission(self)

    def admit(self, transport: asyncio.Transport) -> None:
        """Give ``transport`` to the produce lane with a slot, or refuse it."""
        address = _address_of(transport)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._by_address.get(address, 0) >= self.per_address and not self._evict(
            self._waiting_by_address.get(address), now
        ):
            self._refuse(transport, ADDRESS_REFUSAL)
            return
        if self.connections >= self.limit and not self._evict(self._waiting, now):
            self._refuse(transport, REFUSAL)
            return
        slot = ConnectionSlot(self, address, transport, now)
        self.connections += 1
        self._by_address[address] = self._by_address.get(address, 0) + 1
        self._waiting.add(slot)
        of_address = self._waiting_by_address.get(address)
        if of_address is None:
            of_address = self._waiting_by_address[address] = _Waiting()
        of_address.add(slot)
        slot._deadline = loop.call_later(self.head_timeout_s, slot.expire)
        server = self._server
        connection = self._lane.connection(lambda: request_handler(server, slot), slot)
        transport.set_protocol(connection)
        connection.connection_made(transport)

    def heard_from(self, slot: ConnectionSlot) -> None:
        self._waiting.heard_from(slot)
        self._waiting_by_address[slot.address].heard_from(slot)

    def head_received(self, slot: ConnectionSlot) -> None:
        slot.state = HEAD
        # The deadline is met: cancelled now rather than left to fire into a no-op,
        # so a burst of short connections does not pile up timers (each holding
        # its transport) for the whole head timeout.
        if slot._deadline is not None:
            slot._deadline.cancel()
            slot._deadline = None
        self._forget_waiting(slot)

    def place(self, slot: ConnectionSlot, path: str, authorization: bytes) -> int:
        if slot.state != HEAD:
            return SERVE  # placed already, or gone
        if self._presents_token(authorization):
            slot.state = TRUSTED
            self._leave_address(slot.address)  # the per-address cap is for the unproven
            return SERVE
        if self.general < self.limit - self.reserved:
            slot.state = GENERAL
            self.general += 1
            return SERVE
        slot.state = CLOSING
        return SERVE_THEN_CLOSE if path in OPEN_PATHS else REFUSE

    def release(self, slot: ConnectionSlot) -> None:
        state = slot.state
        if state == RELEASED:
            return
        slot.state = RELEASED
        if slot._deadline is not None:
            slot._deadline.cancel()
            slot._deadline = None
        self.connections -= 1
        if state != TRUSTED:
            self._leave_address(slot.address)
        if state == GENERAL:
            self.general -= 1
        elif state == PENDING:
            self._forget_waiting(slot)

    def close_slot(self, slot: ConnectionSlot, answer: bytes) -> None:
        """Answer a connection that has not sent a complete head, and close it."""
        transport = slot.transport
        self.release(slot)
        if not transport.is_closing():
            transport.write(answer)
            transport.close()

    def _presents_token(self, authorization: bytes) -> bool:
        gate = self._gate
        if gate is None or not gate.token_required:
            return False
        try:
            gate.check_token("", authorization)
        except Unauthorized:
            return False
        return True

    def _evict(self, waiting: _Waiting | None, now: float) -> bool:
        """Close the first evictable connection of ``waiting``; False if there is none."""
        slot = waiting.evictable(now) if waiting else None
        if slot is None:
            return False
        self.close_slot(slot, REFUSAL)
        return True

    def _forget_waiting(self, slot: ConnectionSlot) -> None:
        self._waiting.remove(slot)
        of_address = self._waiting_by_address.get(slot.address)
        if of_address is not None:
            of_address.remove(slot)
            if not of_address:
                del self._waiting_by_address[slot.address]

    def _leave_address(self, address: str) -> None:
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]

    def _refuse(self, transport: asyncio.Transport, answer: bytes) -> None:
        refusal = _RefuseConnection(self._refusals, answer)
        transport.set_protocol(refusal)
        refusal.connection_made(transport)


def _address_of(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    # A TCP peer is (host, port, ...); anything else (a Unix socket) is one address.
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""
