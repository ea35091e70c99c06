"""One Kafka client connection: frames in, handlers run, responses out in request order.

Framing. A request is an int32 length and that many bytes. The length is
read first; a negative one, or one over ``--kafka-max-request-bytes``
(Kafka's ``socket.request.max.bytes``), closes the connection with a
WARNING naming the peer and the reason, and so does a frame that cannot be
decoded. Bodies are read as they arrive (the stream reader's buffer is
64 KiB), after reserving their size in the broker-wide :class:`ByteBudget`.

Pipelining. Clients send several requests without waiting. They are read
ahead (up to :data:`MAX_IN_FLIGHT`), decoded, and handled in order, one at
a time, as Kafka handles them, with one exception: a Produce that follows a
Produce starts as soon as the one before it has started, so pipelined
produce requests share fsyncs; the handler keeps their appends in order.
Responses are written strictly in request order, each after the previous
one is in the transport below its high-water mark (``drain``).

Memory per connection is therefore one request being read, the requests
read ahead (all within the request budget), and one large response plus
small produce answers; a fetch response is at most 55 MiB
(:data:`~minimq.kafka.settings.FETCH_MAX_BYTES`).

Errors never crash the broker: an unknown API key or version gets
UNSUPPORTED_VERSION in a response of the API's lowest version where that
response has a top-level error code (ApiVersions: the KIP-511 v0 answer),
and otherwise the connection is closed with a WARNING; a handler that fails
is answered with its API's error response (or the connection closed), and
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kio.index import KioIndexError
from kio.schema.errors import ErrorCode
from kio.serial.errors import SerialError

from minimq.core import Broker
from minimq.errors import MiniMQError
from minimq.kafka import produce, sasl
from minimq.kafka.api_versions import API_VERSIONS_KEY, unsupported_version_response
from minimq.kafka.byte_budget import ByteBudget
from minimq.kafka.codec import (
    MalformedRequest,
    decode_request,
    encode_raw,
    encode_response,
    error_response,
    has_top_level_error,
    peek_client_id,
    peek_header,
    schemas,
)
from minimq.kafka.context import RequestContext, Session
from minimq.kafka.errors import KafkaError, error_code_for
from minimq.kafka.registry import ApiHandler
from minimq.kafka.settings import KafkaSettings

log = logging.getLogger("minimq.kafka")

_LENGTH: Final = struct.Struct(">i")
PRODUCE_KEY: Final = 0
# Requests read ahead of the one being handled; beyond it the connection reads nothing.
MAX_IN_FLIGHT: Final = 16
# Kafka's connections.max.idle.ms.
IDLE_TIMEOUT_S: Final = 600.0


class CloseConnection(Exception):
    """Stop serving this connection; the message says why (logged as a WARNING)."""


@dataclass(slots=True)
class _Pending:
    """A request read and queued: its outcome is the bytes to write, or None."""

    task: asyncio.Task[bytes | None]
    api_key: int
    started: asyncio.Event


class KafkaConnection:
    """Serves one accepted connection until the peer leaves, errs or the broker stops."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        broker: Broker,
        settings: KafkaSettings,
        apis: Mapping[int, ApiHandler],
        budget: ByteBudget,
        advertised: tuple[str, int],
        body_timeout_s: float,
        write_timeout_s: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._broker = broker
        self._settings = settings
        self._apis = apis
        self._budget = budget
        self._advertised = advertised
        self._body_timeout_s = body_timeout_s
        self._write_timeout_s = write_timeout_s
        self._session = Session()
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.host, self.port = str(peer[0]), int(peer[1])
        self.peer = f"{self.host}:{self.port}"
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        # Taken for each request read, given back when its answer is written.
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._previous: _Pending | None = None
        self._closing = False
        self._abandoned = False

    async def serve(self) -> None:
        writing = asyncio.create_task(self._write_responses())
        try:
            await self._read_requests()
        except CloseConnection as exc:
            log.warning("kafka: closing connection from %s: %s", self.peer, exc)
        except ConnectionError:
            pass
        finally:
            # Answer what was read (unless the connection is being abandoned), then close.
            self._queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await writing
            if self._abandoned:
                self._writer.transport.abort()
            else:
                self._writer.close()
            self._drop_pending()

    def stop_reading(self) -> None:
        """Shutdown: read no more requests; those read already are answered."""
        self._closing = True
        self._reader.feed_eof()

    # -- reading -----------------------------------------------------------------

    async def _read_requests(self) -> None:
        while not self._closing:
            await self._in_flight.acquire()
            try:
                head = await asyncio.wait_for(self._reader.readexactly(4), IDLE_TIMEOUT_S)
            except asyncio.IncompleteReadError as exc:
                if exc.partial and not self._closing:
                    raise CloseConnection(
                        f"truncated frame length ({len(exc.partial)} of 4 bytes)"
                    ) from None
                return
            except TimeoutError:
                log.info("kafka: closing idle connection from %s", self.peer)
                return
            (size,) = _LENGTH.unpack(head)
            if size < 0 or size > self._settings.max_request_bytes:
                raise CloseConnection(
                    f"frame of {size} bytes (--kafka-max-request-bytes is"
                    f" {self._settings.max_request_bytes})"
                )
            await self._budget.reserve(size)
            try:
                frame = await self._read_body(size)
                pending = self._start(frame)
            except BaseException:
                self._budget.release(size)
                raise
            pending.task.add_done_callback(self._releaser(size))
            self._queue.put_nowait(pending)

    def _releaser(self, size: int) -> Callable[[object], None]:
        return lambda _: self._budget.release(size)

    async def _read_body(self, size: int) -> bytes:
        try:
            return await asyncio.wait_for(self._reader.readexactly(size), self._body_timeout_s)
        except asyncio.IncompleteReadError as exc:
            if self._closing:
                raise ConnectionError("closing") from None
            raise CloseConnection(
                f"truncated frame ({len(exc.partial)} of {size} bytes before the peer closed)"
            ) from None
        except TimeoutError:
            raise CloseConnection(
                f"a {size}-byte frame was not complete after {self._body_timeout_s:g} s"
            ) from None

    def _start(self, frame: bytes) -> _Pending:
        """Decode ``frame`` and queue its handling behind the request before it."""
        coroutine: Coroutine[Any, Any, bytes | None]
        if self._session.raw_authentication_next:
            coroutine = self._raw_authentication(frame)
            api_key = sasl.SASL_AUTHENTICATE_KEY
        else:
            try:
                head = peek_header(frame)
            except MalformedRequest as exc:
                raise CloseConnection(str(exc)) from None
            api_key = head.api_key
            coroutine = self._dispatch(frame, head.api_key, head.api_version, head.correlation_id)
        previous = self._previous
        started = asyncio.Event()
        task = asyncio.create_task(self._in_order(previous, api_key, started, coroutine))
        self._previous = _Pending(task, api_key, started)
        return self._previous

    async def _in_order(
        self, previous: _Pending | None, api_key: int, started: asyncio.Event, work: Any
    ) -> bytes | None:
        try:
            if previous is not None:
                if api_key == PRODUCE_KEY and previous.api_key == PRODUCE_KEY:
                    await previous.started.wait()
                else:
                    await asyncio.wait([previous.task])
            started.set()
            result: bytes | None = await work
            return result
        finally:
            started.set()
            work.close()

    # -- handling ----------------------------------------------------------------

    async def _dispatch(
        self, frame: bytes, api_key: int, version: int, correlation_id: int
    ) -> bytes | None:
        handler = self._apis.get(api_key)
        if handler is None or not handler.advertises(version):
            return self._unsupported(frame, api_key, version, correlation_id, handler)
        if api_key == PRODUCE_KEY and version < produce.MIN_SERVED_VERSION:
            return self._refuse_legacy_produce(frame, version, correlation_id)
        try:
            request_type, response_type = schemas(api_key, version)
        except KioIndexError:
            raise CloseConnection(f"{handler.name} v{version} has no schema to decode") from None
        try:
            client_id, request, trailing = decode_request(frame, request_type)
        except MalformedRequest as exc:
            raise CloseConnection(f"malformed {handler.name} v{version} request: {exc}") from None
        log.debug(
            "kafka request api_key=%d version=%d client_id=%s peer=%s",
            api_key,
            version,
            client_id,
            self.peer,
        )
        if trailing:
            log.debug("kafka: %d bytes after a %s v%d request", trailing, handler.name, version)
        ctx = RequestContext(
            broker=self._broker,
            settings=self._settings,
            apis=self._apis,
            client_host=self.host,
            client_port=self.port,
            client_id=client_id,
            api_key=api_key,
            api_version=version,
            correlation_id=correlation_id,
            response_type=response_type,
            advertised=self._advertised,
            session=self._session,
        )
        if sasl.needs_authentication(self._settings.token, self._session, api_key):
            log.warning(
                "kafka: %s v%d from %s before SASL authentication (the broker has a token):"
                " refused",
                handler.name,
                version,
                self.peer,
            )
            refusal = sasl.refusal(request, ctx)
            if refusal is None:
                raise CloseConnection(f"{handler.name} before SASL authentication")
            return encode_response(correlation_id, refusal)
        try:
            response = await handler.function(request, ctx)
        except (MiniMQError, KafkaError) as exc:
            response = self._error_response(handler, response_type, error_code_for(exc), exc)
        except Exception as exc:
            log.exception("kafka: %s v%d from %s failed", handler.name, version, self.peer)
            response = self._error_response(
                handler, response_type, ErrorCode.unknown_server_error, exc
            )
        if response is None:
            return None
        return encode_response(correlation_id, response)

    def _refuse_legacy_produce(
        self, frame: bytes, version: int, correlation_id: int
    ) -> bytes | None:
        if sasl.needs_authentication(self._settings.token, self._session, PRODUCE_KEY):
            raise CloseConnection(f"produce v{version} before SASL authentication")
        log.warning(
            "kafka: produce v%d from %s refused: UNSUPPORTED_VERSION (v3+ only)", version, self.peer
        )
        try:
            return produce.refuse_legacy(frame, version, correlation_id)
        except (SerialError, ValueError, UnicodeError) as exc:
            raise CloseConnection(f"malformed produce v{version} request: {exc}") from None

    def _error_response(
        self, handler: ApiHandler, response_type: type[Any], code: ErrorCode, exc: Exception
    ) -> Any:
        if not has_top_level_error(response_type):
            raise CloseConnection(
                f"{handler.name} failed ({code.name}: {exc}) and its response has no error code"
            )
        return error_response(response_type, code)

    def _unsupported(
        self,
        frame: bytes,
        api_key: int,
        version: int,
        correlation_id: int,
        handler: ApiHandler | None,
    ) -> bytes:
        if api_key == API_VERSIONS_KEY:
            # Logged as answered requests are, so the version a client opened with shows.
            log.debug(
                "kafka request api_key=%d version=%d client_id=%s peer=%s (KIP-511 answer)",
                api_key,
                version,
                peek_client_id(frame),
                self.peer,
            )
            return encode_response(correlation_id, unsupported_version_response())
        if handler is None:
            raise CloseConnection(f"API key {api_key} (version {version}) is not supported")
        try:
            _, response_type = schemas(api_key, handler.min_version)
        except KioIndexError:  # pragma: no cover - every registered range exists in kio
            response_type = None
        if response_type is None or not has_top_level_error(response_type):
            raise CloseConnection(
                f"{handler.name} v{version} is not supported"
                f" (versions {handler.min_version}-{handler.max_version})"
            )
        log.warning(
            "kafka: %s v%d from %s is not supported (versions %d-%d): UNSUPPORTED_VERSION",
            handler.name,
            version,
            self.peer,
            handler.min_version,
            handler.max_version,
        )
        return encode_response(
            correlation_id, error_response(response_type, ErrorCode.unsupported_version)
        )

    async def _raw_authentication(self, frame: bytes) -> bytes:
        if not sasl.authenticate_plain(self._session, self._settings.token, frame):
            raise CloseConnection("SASL/PLAIN authentication failed (wrong password)")
        return encode_raw(b"")

    # -- writing -----------------------------------------------------------------

    async def _write_responses(self) -> None:
        writer = self._writer
        while (pending := await self._queue.get()) is not None:
            self._in_flight.release()
            try:
                data = await pending.task
            except CloseConnection as exc:
                log.warning("kafka: closing connection from %s: %s", self.peer, exc)
                self._abandon()
                return
            except Exception:
                log.exception("kafka: closing connection from %s: request failed", self.peer)
                self._abandon()
                return
            if data is not None:
                writer.write(data)
                try:
                    await asyncio.wait_for(writer.drain(), self._write_timeout_s)
                except TimeoutError:
                    log.warning(
                        "kafka: closing connection from %s: it read nothing for %g s",
                        self.peer,
                        self._write_timeout_s,
                    )
                    self._abandon()
                    return
                except ConnectionError:
                    self._abandon()
                    return
            if self._session.close_after_response:
                log.warning(
                    "kafka: closing connection from %s after a failed SASL exchange", self.peer
                )
                self._abandon()
                return

    def _abandon(self) -> None:
        """Stop reading and drop what is queued: the connection is closing."""
        self._closing = self._abandoned = True
        self._reader.feed_eof()
        self._writer.transport.abort()

    def _drop_pending(self) -> None:
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if pending is not None:
                pending.task.cancel()
        if self._previous is not None:
            self._previous.task.cancel()
