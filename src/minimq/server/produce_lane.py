"""The produce lane: small produce requests served beside aiohttp, not through it.

Why.  A one-record ``POST /produce`` is the broker's most frequent request and
the one whose cost is almost all HTTP: on a 2-core machine, at 64 connections
and ``fsync=always``, aiohttp's per-request work (request and response objects,
routing, middleware, header serialisation) was about 40 of the 64 µs of
event-loop CPU each request took, and capped the broker near 14,500 req/s.
A connection served here parses the request with httptools (llhttp, the
parser aiohttp itself uses) and writes the response in one piece, and does the
same broker work through the same functions and checks as the routes.

What.  Every accepted connection starts here. A request is served here when it
is exactly:

* ``POST /produce`` or ``POST /v1/topics/<name>/records`` (a plain topic name,
  no query string), HTTP/1.1, keep-alive;
* framed by one ``Content-Length`` of at most :data:`MAX_BODY_BYTES`, with the
  whole header block in hand;
* carrying only headers the lane knows (:data:`_LANE_HEADERS`), each at most
  once, ``Host`` among them.

Anything else (another route, HTTP/1.0, ``Connection: close``, a chunked,
compressed or large body, ``Expect``, an unknown or repeated header, a header
block split across reads, a parse error) hands the connection to aiohttp,
together with every byte of the current request: aiohttp then serves that
request and the rest of the connection as it serves any other, so routing,
limits, errors and the slow-client defences stay aiohttp's for everything
unusual. The lane never takes a connection back. The header list is an
allowlist, not a list of headers to refuse, because a header the lane has not
thought about may change what aiohttp would answer (``Content-Encoding: gzip``
is decompressed there; a repeated ``Host`` is a 400 there).

End of input.  Once the client has closed its sending side, a request still
incomplete never completes: the lane hands it to aiohttp at once, which closes
the connection as it closes its own (a request the lane is serving is answered
first).

Same answers.  Auth and the in-flight cap are the shared
:class:`~minimq.server.gate.RequestGate`; the work is
:func:`~minimq.server.topic_routes.produce_message` /
:func:`~minimq.server.topic_routes.produce_records`; errors are the same JSON
bodies from :mod:`minimq.server.errors`; latency goes to the same histogram
under the same route labels. Responses carry the headers aiohttp would send.

Requests on one connection are served one at a time, in order, as HTTP/1.1
requires; a connection whose client pipelines more than
:data:`MAX_BUFFERED_BYTES` ahead stops being read until it catches up.

Concurrency: event-loop thread only (asyncio protocol callbacks and tasks).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, Final, cast

import httptools
import orjson
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

from minimq.core import Broker
from minimq.errors import MiniMQError, RequestTimeout, TooManyConnections
from minimq.server import inputs
from minimq.server.connection_limit import REFUSE, SERVE, SHARE_FULL, ConnectionSlot
from minimq.server.errors import internal_error_response, response_for_error
from minimq.server.gate import RequestGate
from minimq.server.metrics import BrokerMetrics
from minimq.server.topic_routes import produce_message, produce_records

log = logging.getLogger("minimq.server")

MAX_BODY_BYTES: Final = 64 * 1024
MAX_BUFFERED_BYTES: Final = 256 * 1024
# A longer header block goes to aiohttp: this is its limit for one header line,
# so no request the lane serves has a line aiohttp would refuse.
MAX_HEAD_BYTES: Final = 8190
SWEEP_INTERVAL_S: Final = 5.0

LEGACY_ROUTE: Final = "/produce"
RECORDS_ROUTE: Final = "/v1/topics/{topic}/records"
_RECORDS_TARGET = re.compile(rb"/v1/topics/([A-Za-z0-9._-]{1,249})/records")
_HEAD_END = b"\r\n\r\n"

# The request headers the lane serves, by lower-case name, each a bit of the
# request's seen-headers mask (a second one of any of them goes to aiohttp,
# which refuses a repeated Host, Content-Length, Content-Type or User-Agent).
# What the lane does with each:
_HOST: Final = 1  # required, as aiohttp requires it of HTTP/1.1; the value is unused on both paths
_CONTENT_LENGTH: Final = 2  # the framing: one plain decimal, or aiohttp decides
_AUTHORIZATION: Final = 4  # the bearer check, on the value as aiohttp reads it
_CONNECTION: Final = 8  # only "keep-alive"; close, upgrade or a list of options go to aiohttp
# Idempotent produce: the value (ASCII; anything else goes to aiohttp) is checked and
# used by produce_message / produce_records, as on the aiohttp route.
_IDEMPOTENCY_KEY: Final = 512
_LANE_HEADERS: Final = {
    b"host": _HOST,
    b"content-length": _CONTENT_LENGTH,
    b"authorization": _AUTHORIZATION,
    b"connection": _CONNECTION,
    # Read by neither path: the routes parse the body as JSON whatever its declared
    # type, answer JSON whatever is accepted and never compress an answer, and
    # aiohttp takes Keep-Alive's parameters as advice it does not follow.
    b"content-type": 16,
    b"accept": 32,
    b"accept-encoding": 64,
    b"user-agent": 128,
    b"keep-alive": 256,
    b"idempotency-key": _IDEMPOTENCY_KEY,
}
# Everything else goes to aiohttp, because it may change the answer there:
# Content-Encoding (decompressed), Transfer-Encoding, Expect (100-continue, or
# 417), Upgrade, Trailer, TE, and every header not listed.


class _HandOff(Exception):
    """Raised inside parser callbacks: this request is for aiohttp."""


# What feed_data raises when parsing stops: errors (a callback's _HandOff
# arrives wrapped in one) and upgrades (CONNECT, Upgrade), which are not errors.
_PARSE_ENDS = (httptools.HttpParserError, httptools.HttpParserUpgrade)


class ProduceLane:
    """The lane's shared state: broker, settings, open connections, shutdown."""

    def __init__(
        self,
        broker: Broker,
        metrics: BrokerMetrics,
        gate: RequestGate,
        *,
        max_body_bytes: int,
        request_timeout_s: float,
        keepalive_timeout_s: float,
    ) -> None:
        self.broker = broker
        self.gate = gate
        self.max_body_bytes = min(max_body_bytes, MAX_BODY_BYTES)
        self.request_timeout_s = request_timeout_s
        self.keepalive_timeout_s = keepalive_timeout_s
        self.connections: set[LaneConnection] = set()
        self.closing = False
        self._metrics = metrics
        self._observers: dict[tuple[str, int], Callable[[float], None]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._all_closed = asyncio.Event()
        self._date_second = -1
        self._date = b""

    def connection(
        self, aiohttp_handler: Callable[[], asyncio.Protocol], slot: ConnectionSlot | None = None
    ) -> LaneConnection:
        """A new connection, handed to ``aiohttp_handler()`` if it leaves the lane.

        ``slot`` is its place in the connection limiter, which the lane tells
        of the first request head and of the end while it holds the connection.
        """
        if self._sweeper is None and not self.closing:
            self._schedule_sweep()
        return LaneConnection(self, aiohttp_handler, slot)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self._metrics.lane_requests += 1
        observer = self._observers.get((route, status))
        if observer is None:
            observer = self._observers[(route, status)] = self._metrics.request_seconds(
                route, "POST", status
            ).observe
        observer(seconds)

    def date_header(self) -> bytes:
        """The ``Date`` value, formatted once a second (aiohttp caches it the same way)."""
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = email.utils.formatdate(now, usegmt=True).encode("ascii")
        return self._date

    async def shutdown(self, timeout_s: float) -> None:
        """Close idle connections now and the others after their current response.

        Returns when all are closed, or after ``timeout_s``.
        """
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self.connections):
            connection.close_when_idle()
        if self.connections:
            self._all_closed.clear()
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout_s)
            except TimeoutError:
                busy = len(self.connections)
                log.warning("%d produce-lane connection(s) still busy at shutdown", busy)

    def handed_off(self, connection: LaneConnection) -> None:
        self._metrics.lane_handoffs += 1
        self.forget(connection)

    def forget(self, connection: LaneConnection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._all_closed.set()

    def _schedule_sweep(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._sweep)

    def _sweep(self) -> None:
        # Keep-alive timeout without a timer per request: idle connections are
        # closed by a periodic sweep, as aiohttp closes its own after the same time.
        now = time.monotonic()
        for connection in list(self.connections):
            connection.close_if_idle_since(now - self.keepalive_timeout_s)
        self._schedule_sweep()


class LaneConnection(asyncio.Protocol):
    """One client connection while it is in the lane (see the module docstring)."""

    def __init__(
        self,
        lane: ProduceLane,
        aiohttp_handler: Callable[[], asyncio.Protocol],
        slot: ConnectionSlot | None,
    ) -> None:
        self._lane = lane
        self._aiohttp_handler = aiohttp_handler
        self._slot = slot
        # Until its first request is placed, the limiter hears of its head.
        self._placed = slot is None
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._buffer = b""
        self._busy = False
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False
        self._close_when_idle = False
        self._body_deadline: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        # Set at open and after each answer: enough for the keep-alive sweep,
        # which never closes a connection that is busy or has bytes waiting.
        self._last_active = time.monotonic()
        # Per-request parse state, filled by the httptools callbacks.
        self._target = b""
        self._content_length: int | None = None
        self._authorization = b""
        self._idempotency_key: str | None = None
        self._seen_headers = 0
        self._headers_complete = False
        self._message_complete = False

    # ------------------------------------------------------------ asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._lane.connections.add(self)
        if self._lane.closing:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_body_deadline()
        self._transport = None
        self._lane.forget(self)
        if self._slot is not None:
            self._slot.release()

    def data_received(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        if not self._placed:
            assert self._slot is not None
            self._slot.data_received()
        if not self._busy:
            self._serve_buffered()
        self._pace_reading()

    def eof_received(self) -> bool:
        self._eof = True
        if self._busy:
            return True  # keep the transport open to send the response in progress
        if self._buffer:
            # aiohttp decides what a truncated request gets (it closes the
            # connection, and _hand_off does that for it).
            self._hand_off()
            return True
        return False

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if not self._busy:
            self._serve_buffered()
            self._pace_reading()

    # ----------------------------------------------------------- httptools callbacks

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        header = _LANE_HEADERS.get(name.lower(), 0)
        if not header or self._seen_headers & header:
            raise _HandOff  # unknown or repeated: aiohttp decides (see _LANE_HEADERS)
        self._seen_headers |= header
        if header == _CONTENT_LENGTH:
            # One plain decimal length or aiohttp decides (lists, signs, spaces).
            if not value.isdigit() or len(value) > 18:
                raise _HandOff
            self._content_length = int(value)
        elif header == _AUTHORIZATION:
            # The raw bytes: the gate reads them (scheme, blanks) as it reads aiohttp's.
            self._authorization = value
        elif header == _CONNECTION and value.lower() != b"keep-alive":
            raise _HandOff
        elif header == _IDEMPOTENCY_KEY:
            if not value.isascii():
                raise _HandOff
            self._idempotency_key = value.decode("ascii")

    def on_headers_complete(self) -> None:
        self._headers_complete = True

    def on_message_complete(self) -> None:
        self._message_complete = True

    # ------------------------------------------------------------------ serving

    def close_when_idle(self) -> None:
        self._close_when_idle = True
        if not self._busy and self._transport is not None:
            self._transport.close()

    def close_if_idle_since(self, cutoff: float) -> None:
        idle = not self._busy and not self._buffer
        if idle and self._last_active < cutoff and self._transport is not None:
            self._transport.close()

    def _serve_buffered(self) -> None:
        """Start serving the next buffered request, if it is complete and the lane's."""
        if self._transport is None or self._writing_paused or self._lane.closing:
            return
        buffer = self._buffer
        head_end = buffer.find(_HEAD_END)
        if head_end < 0:
            if buffer:
                self._hand_off()  # a head in pieces: slow or unusual, aiohttp's business
            return
        body_start = head_end + len(_HEAD_END)
        if not self._placed:
            assert self._slot is not None
            self._slot.head_received()
        if not self._headers_complete and (
            body_start > MAX_HEAD_BYTES or not self._parse_head(buffer[:body_start])
        ):
            self._hand_off()
            return
        length = self._content_length or 0
        if len(buffer) - body_start < length:
            if self._eof:
                self._hand_off()  # the rest can no longer arrive: no point waiting for it
            else:
                self._await_body()
            return
        self._cancel_body_deadline()
        end = body_start + length
        body = buffer[body_start:end]
        if length:
            try:
                self._parser.feed_data(body)
            except _PARSE_ENDS:
                self._hand_off()
                return
        if not self._message_complete:
            self._hand_off()
            return
        target, authorization, key = self._target, self._authorization, self._idempotency_key
        self._reset_request()
        self._buffer = buffer[end:]
        self._busy = True
        # Held so the task cannot be collected while it waits for its append.
        self._task = asyncio.get_running_loop().create_task(
            self._serve(target, authorization, body, key)
        )

    def _parse_head(self, head: bytes) -> bool:
        """Feed one header block to the parser; True when the request is the lane's."""
        try:
            self._parser.feed_data(head)
        except _PARSE_ENDS:
            return False
        length = self._content_length
        return (
            self._headers_complete
            and length is not None
            and (self._seen_headers & _HOST) != 0
            and length <= self._lane.max_body_bytes
            and self._parser.get_method() == b"POST"
            and self._parser.get_http_version() == "1.1"
            and (self._target == b"/produce" or _RECORDS_TARGET.fullmatch(self._target) is not None)
            # A zero-length body completes the message with the head; a longer one must not.
            and self._message_complete == (length == 0)
        )

    def _await_body(self) -> None:
        if self._body_deadline is None:
            self._body_deadline = asyncio.get_running_loop().call_later(
                self._lane.request_timeout_s, self._body_timed_out
            )

    def _body_timed_out(self) -> None:
        self._body_deadline = None
        route = _route_of(self._target)
        timeout = self._lane.request_timeout_s
        error = RequestTimeout(f"request body not received within {timeout:g}s")
        self._close_when_idle = True
        self._respond_with(response_for_error(error), route, time.perf_counter() - timeout)

    async def _serve(
        self, target: bytes, authorization: bytes, body: bytes, idempotency_key: str | None
    ) -> None:
        started = time.perf_counter()
        lane = self._lane
        route = _route_of(target)
        status = 201 if route == LEGACY_ROUTE else 200
        if not self._placed and self._refused_by_limiter(target, authorization):
            self._respond_with(response_for_error(TooManyConnections(SHARE_FULL)), route, started)
            return
        try:
            lane.gate.enter()
        except MiniMQError as error:
            self._respond_with(response_for_error(error), route, started)
            return
        try:
            if lane.gate.token_required:
                lane.gate.check_token(target.decode("ascii"), authorization)
            if route == LEGACY_ROUTE:
                payload = await produce_message(lane.broker, _json_object(body), idempotency_key)
            else:
                match = _RECORDS_TARGET.fullmatch(target)
                assert match is not None  # checked by _parse_head
                # The topic first, then the body: the order the aiohttp route checks them in.
                topic = inputs.topic_name(match.group(1).decode("ascii"))
                payload = await produce_records(
                    lane.broker, topic, _json_object(body), idempotency_key
                )
        except MiniMQError as error:
            self._respond_with(response_for_error(error), route, started)
        except Exception:
            log.exception("unexpected error serving POST %s", target.decode("ascii", "replace"))
            self._respond_with(internal_error_response(), route, started)
        else:
            self._respond(status, orjson.dumps(payload), (), route, started)
        finally:
            lane.gate.leave()

    def _refused_by_limiter(self, target: bytes, authorization: bytes) -> bool:
        """Place the first request with the connection limiter; True if it is refused."""
        self._placed = True
        assert self._slot is not None
        verdict = self._slot.place(target.decode("ascii"), authorization)
        if verdict == SERVE:
            return False
        self._close_when_idle = True
        return verdict == REFUSE

    def _respond_with(self, response: web.Response, route: str, started: float) -> None:
        """Send an error answer built by :mod:`minimq.server.errors`, headers and all."""
        body = response.body
        assert isinstance(body, bytes)
        # Content-Type is always application/json, which _wire_bytes writes itself.
        headers = [
            (name, value) for name, value in response.headers.items() if name != "Content-Type"
        ]
        self._respond(response.status, body, headers, route, started)

    def _respond(
        self,
        status: int,
        body: bytes,
        headers: Sequence[tuple[str, str]],
        route: str,
        started: float,
    ) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            close = self._close_when_idle
            transport.write(_wire_bytes(status, body, headers, self._lane.date_header(), close))
        self._lane.observe(route, status, time.perf_counter() - started)
        self._busy = False
        self._last_active = time.monotonic()
        if transport is None:
            return
        if self._close_when_idle or self._lane.closing or (self._eof and not self._buffer):
            transport.close()
            return
        if self._buffer:
            self._serve_buffered()
        self._pace_reading()

    # ---------------------------------------------------------------- hand-off

    def _hand_off(self) -> None:
        """Give the connection, and every byte of the current request, to aiohttp.

        After end of input the transport is closed here unless aiohttp's
        ``eof_received`` asks to keep it open, as the transport itself does with
        an end it reports: it reported this one to the lane, which kept it open,
        and aiohttp, told of it too late, would wait out its request timeout for
        the rest of a request that cannot come. It is closed one loop step after
        the bytes are handed over, as on aiohttp's own connections, where the end
        always arrives in a later read than the data: aiohttp's handler starts
        first and sees a client that hung up (400), not a connection already gone
        (a ``RuntimeError`` and a 500).
        """
        transport = self._transport
        if transport is None:
            return
        self._cancel_body_deadline()
        self._transport = None
        self._lane.handed_off(self)
        handler = self._aiohttp_handler()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._writing_paused:
            handler.pause_writing()
        buffer, self._buffer = self._buffer, b""
        if buffer:
            handler.data_received(buffer)
        if self._eof:
            if not handler.eof_received():
                asyncio.get_running_loop().call_soon(transport.close)
        elif self._reading_paused:
            transport.resume_reading()

    # ----------------------------------------------------------------- helpers

    def _pace_reading(self) -> None:
        """Stop reading while more than MAX_BUFFERED_BYTES wait unserved; resume below."""
        transport = self._transport
        if transport is None or self._eof:
            return
        backlog = len(self._buffer) > MAX_BUFFERED_BYTES
        if backlog != self._reading_paused:
            self._reading_paused = backlog
            if backlog:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _cancel_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _reset_request(self) -> None:
        self._target = b""
        self._content_length = None
        self._authorization = b""
        self._idempotency_key = None
        self._seen_headers = 0
        self._headers_complete = False
        self._message_complete = False


_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_SERVER = SERVER_SOFTWARE.encode("ascii")


def _route_of(target: bytes) -> str:
    """The metrics route template of a request target the lane accepted."""
    return LEGACY_ROUTE if target == b"/produce" else RECORDS_ROUTE


def _json_object(body: bytes) -> dict[str, Any]:
    return inputs.json_object(inputs.parse_body(body))


def _wire_bytes(
    status: int, body: bytes, headers: Sequence[tuple[str, str]], date: bytes, close: bool
) -> bytes:
    """A JSON answer as the HTTP/1.1 message aiohttp sends for ``json_response``."""
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n" % (
        status,
        _REASONS.get(status, b""),
    )
    for name, value in headers:
        head += f"{name}: {value}\r\n".encode("latin-1")
    head += b"Content-Length: %d\r\nDate: %s\r\nServer: %s\r\n" % (len(body), date, _SERVER)
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body
