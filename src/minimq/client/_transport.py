"""What the sync and async clients share around the I/O: headers, errors, backoff.

Nothing here depends on an HTTP library: each client classifies its own
library's exceptions into a :class:`Failure` and hands over status, reason and
body bytes.  Errors are translated here and only here::

    broker answered {"error": {"code", "message"}}   -> error_for_code(code)  (typed MiniMQError)
    broker answered some other 4xx/5xx               -> by status, message = body excerpt
    connection refused / reset / timed out           -> BrokerUnavailable, or OutcomeUnknown
                                                        (see minimq.client._failover)

Which failed calls are sent again, and to which broker, is
:mod:`minimq.client._failover`'s job; :class:`RetryPolicy` only says how many
times and how long to wait in between.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from minimq import __version__
from minimq.client._calls import Call
from minimq.errors import (
    InvalidRequest,
    MiniMQError,
    NotFound,
    RequestTimeout,
    Unauthorized,
    error_for_code,
)

T = TypeVar("T")

_ERRORS_BY_STATUS: dict[int, type[MiniMQError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    404: NotFound,
    408: RequestTimeout,
}


class Failure(enum.Enum):
    """How far a request that got no answer went."""

    NOT_SENT = "not sent"
    MAYBE_PROCESSED = "maybe processed"


def request_headers(token: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"minimq-client/{__version__}", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def encode_body(call: Call[Any]) -> tuple[bytes | None, dict[str, str]]:
    """The request body as JSON bytes plus the headers of this request.

    Those are its content type (none for bodiless calls) and the call's own
    (an ``Idempotency-Key``).
    """
    if call.body is None:
        return None, dict(call.headers)
    return orjson.dumps(call.body), {"Content-Type": "application/json", **call.headers}


def error_from_body(status: int, reason: str, body: bytes) -> MiniMQError:
    """The typed error for a 4xx/5xx answer, preferring the broker's stable code."""
    try:
        payload = orjson.loads(body)
        error = payload["error"]
        mapped = error_for_code(str(error["code"]), str(error["message"]))
        # What happened despite the error (a produce that stored some partitions).
        details = {name: value for name, value in payload.items() if name != "error"}
        if details:
            mapped.details = details
        return mapped
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        excerpt = body[:200].decode(errors="replace").strip() or reason
        cls = _ERRORS_BY_STATUS.get(status, MiniMQError)
        return cls(f"HTTP {status}: {excerpt}")


def decode_body(call: Call[T], status: int, reason: str, body: bytes) -> T:
    """The parsed value of a finished response, or the broker's error raised."""
    if status >= 400:
        raise error_from_body(status, reason, body)
    if call.raw_body:
        return call.parse(body)
    if status == 204 or not body:
        return call.parse(None)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MiniMQError(f"broker sent invalid JSON: {body[:200]!r}") from exc
    return call.parse(payload)


def read_timeout(timeout: float, call: Call[Any]) -> float:
    """Seconds to wait for an answer: the client timeout plus the call's long-poll wait."""
    return timeout + call.wait_ms / 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Up to ``retries`` further attempts with capped, jittered exponential backoff."""

    retries: int = 3
    base_delay: float = 0.1
    max_delay: float = 2.0

    def backoff(self, attempt: int) -> float:
        # Full jitter: clients retrying after a broker restart do not stampede together.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
