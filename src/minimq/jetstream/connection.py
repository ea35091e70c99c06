"""One NATS connection per broker process, JetStream API requests, and the failover retry rule.

Connecting.  :func:`connect` tries every server until one answers and JetStream replies to an
account-info request (a node answering TCP before its JetStream has a meta leader is not ready),
for at most ``connect_timeout_s``.  After that the client reconnects forever (``-1`` attempts)
with a capped wait between rounds, so a gateway outlives any outage of the cluster.

Failover.  While a stream elects a leader (4-9 s after a leader crash, per the measured facts),
requests fail with ``TimeoutError``, ``NoRespondersError``/``NoStreamResponseError``, a 503 API
error, or a connection that is reconnecting.  :func:`retry_failover` retries those with backoff
within a bound and then raises :class:`~minimq.errors.StorageError` (HTTP 503); every other
error goes to the caller at once.  Operations whose outcome a lost answer leaves unknown are
retried only where a repeat is safe (publishes carry a ``Nats-Msg-Id``; KV writes are
revision-checked and re-read).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client

from minimq.errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")

API_PREFIX: Final = "$JS.API"
DEFAULT_REQUEST_TIMEOUT_S: Final = 5.0
# How long one operation keeps retrying through a failover before it answers 503: longer than
# the 4-9 s a stream needs to elect a new leader, shorter than a client's patience.
FAILOVER_BUDGET_S: Final = 20.0
_BACKOFF_FIRST_S: Final = 0.05
_BACKOFF_MAX_S: Final = 1.0

# JetStream error codes (``err_code``) this backend acts on.
ERR_WRONG_LAST_SEQUENCE: Final = 10071
ERR_TRANSIENT_WRONG_LAST_SEQUENCE: Final = 10164
ERR_STREAM_NOT_FOUND: Final = 10059
ERR_NO_MESSAGE_FOUND: Final = 10037
ERR_DUPLICATE_IN_PROCESS: Final = 10158
ERR_BATCH_DUPLICATE_MSG_ID: Final = 10201
ERR_STREAM_NAME_IN_USE: Final = 10058


class ApiError(Exception):
    """A JetStream API or publish error answer: HTTP-like ``code`` and JetStream ``err_code``."""

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"{description} (code {code}, err_code {err_code})")
        self.code = code
        self.err_code = err_code
        self.description = description


class Unavailable(Exception):
    """A transient failover condition surfaced as an answer (503), retried like a timeout."""


_TRANSIENT: Final = (
    asyncio.TimeoutError,  # nats.errors.TimeoutError is one
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    Unavailable,
)


def is_transient(exc: BaseException) -> bool:
    """True for the errors a leader election or a reconnect produces."""
    if isinstance(exc, ApiError):
        return exc.code == 503 or exc.err_code in (
            ERR_DUPLICATE_IN_PROCESS,
            ERR_TRANSIENT_WRONG_LAST_SEQUENCE,
        )
    return isinstance(exc, _TRANSIENT)


async def retry_failover(
    operation: Callable[[], Awaitable[T]], what: str, budget_s: float = FAILOVER_BUDGET_S
) -> T:
    """Run ``operation``, retrying transient failures for ``budget_s``; then ``StorageError``."""
    deadline = time.monotonic() + budget_s
    wait = _BACKOFF_FIRST_S
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if time.monotonic() + wait > deadline:
                raise StorageError(
                    f"the NATS cluster did not answer while {what} "
                    f"(for {budget_s:.0f} s: {type(exc).__name__}: {exc})"
                ) from exc
            log.debug("retrying %s after %s: %s", what, type(exc).__name__, exc)
        await asyncio.sleep(wait)
        wait = min(wait * 2, _BACKOFF_MAX_S)


def raise_for_api_error(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` unless it carries a JetStream ``error`` object, which is raised as ApiError."""
    error = answer.get("error")
    if error:
        raise ApiError(
            int(error.get("code", 500)),
            int(error.get("err_code", 0)),
            str(error.get("description", "")),
        )
    return answer


class JetStreamConnection:
    """A connected NATS client plus the JetStream API requests the backend makes.

    Safe to share between every coroutine of one event loop (nats-py multiplexes requests).
    """

    def __init__(
        self,
        client: Client,
        events: _ConnectionEvents | None = None,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ):
        self.client = client
        self._events = events or _ConnectionEvents()
        self.request_timeout_s = request_timeout_s

    @property
    def max_payload(self) -> int:
        """The server's limit for one message, headers included."""
        return int(self.client.max_payload)

    async def api(self, endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One ``$JS.API.<endpoint>`` request; ApiError for an error answer, 503 as Unavailable."""
        payload = b"" if body is None else json.dumps(body).encode()
        reply = await self.client.request(
            f"{API_PREFIX}.{endpoint}", payload, timeout=self.request_timeout_s
        )
        if reply.headers and reply.headers.get("Status") == "503":
            raise Unavailable(f"{endpoint}: no JetStream responders (503)")
        answer: dict[str, Any] = json.loads(reply.data)
        return raise_for_api_error(answer)

    async def publish_acked(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        """Publish and wait for the stream's ack (a JSON pub ack), never ``publish_async``.

        nats-py's ``publish_async`` never completes its future on an error ack; a plain
        request sees every answer.
        """
        reply = await self.client.request(
            subject, payload, timeout=self.request_timeout_s, headers=headers
        )
        if reply.headers and reply.headers.get("Status") == "503":
            raise Unavailable(f"publish to {subject}: no stream responders (503)")
        if not reply.data:
            return {}
        answer: dict[str, Any] = json.loads(reply.data)
        return raise_for_api_error(answer)

    async def close(self) -> None:
        self._events.closing = True
        if not self.client.is_closed:
            await self.client.drain()


async def connect(
    servers: Sequence[str], connect_timeout_s: float = 60.0, name: str = "minimq"
) -> JetStreamConnection:
    """Connect to any of ``servers`` and wait until JetStream answers (at most the timeout)."""
    if not servers:
        raise StorageError("no NATS server URL given")
    deadline = time.monotonic() + connect_timeout_s
    last_error: BaseException | None = None
    events = _ConnectionEvents()
    while time.monotonic() < deadline:
        try:
            client = await nats.connect(
                servers=list(servers),
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                # A hung server (not a closed socket) is noticed by missed pings; nats-py's
                # default (2 min x 2) would hold every request of this gateway for minutes.
                ping_interval=2,
                max_outstanding_pings=3,
                # The first connect must not hang on one dead server: each attempt is bounded
                # and this loop goes round the list again until the deadline.
                dont_randomize=False,
                error_cb=events.error,
                disconnected_cb=events.disconnected,
                reconnected_cb=events.reconnected,
            )
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            last_error = exc
            await asyncio.sleep(0.5)
            continue
        connection = JetStreamConnection(client, events)
        while time.monotonic() < deadline:
            try:
                await connection.api("INFO")
                return connection
            except Exception as exc:
                if not is_transient(exc):
                    await client.close()
                    raise StorageError(
                        f"NATS at {', '.join(servers)} has no JetStream: {exc}"
                    ) from exc
                last_error = exc
                await asyncio.sleep(0.5)
        await client.close()
    raise StorageError(
        f"could not reach JetStream at {', '.join(servers)} within {connect_timeout_s:.0f} s "
        f"({type(last_error).__name__ if last_error else 'timeout'}: {last_error})"
    )


class _ConnectionEvents:
    """nats-py's connection callbacks, logged; quiet once the connection is being closed."""

    def __init__(self) -> None:
        self.closing = False

    async def error(self, exc: Exception) -> None:
        if not self.closing:
            log.warning("NATS connection error: %s", exc)

    async def disconnected(self) -> None:
        if not self.closing:
            log.warning("NATS connection lost; reconnecting")

    async def reconnected(self) -> None:
        log.info("NATS connection re-established")
