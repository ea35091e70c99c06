"""What the sync and async clients share around the I/O: headers, errors, retries.

Errors are translated here and only here::

    broker answered {"error": {"code", "message"}}   -> error_for_code(code)  (typed MiniMQError)
    broker answered some other 4xx/5xx               -> by status, message = body excerpt
    connection refused / reset / timed out           -> BrokerUnavailable

Retry policy (:meth:`RetryPolicy.delay`): a request that provably never
reached the broker (connect failed, no pooled connection) is retried whatever
it is; one that may have been processed (read timeout, dropped connection,
503) is retried only when the :class:`~minimq.client._calls.Call` is
idempotent, so a produce whose outcome is unknown is never sent twice here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson

from minimq import __version__
from minimq.client._calls import Call
from minimq.errors import (
    BrokerUnavailable,
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

# Errors raised before a single byte of the request went out.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def request_headers(token: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"minimq-client/{__version__}", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def encode_body(call: Call[Any]) -> tuple[bytes | None, dict[str, str]]:
    """The request body as JSON bytes plus its content type (none for bodiless calls)."""
    if call.body is None:
        return None, {}
    return orjson.dumps(call.body), {"Content-Type": "application/json"}


def error_from_response(response: httpx.Response) -> MiniMQError:
    """The typed error for a 4xx/5xx answer, preferring the broker's stable code."""
    try:
        error = orjson.loads(response.content)["error"]
        return error_for_code(str(error["code"]), str(error["message"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        excerpt = response.text[:200].strip() or response.reason_phrase
        cls = _ERRORS_BY_STATUS.get(response.status_code, MiniMQError)
        return cls(f"HTTP {response.status_code}: {excerpt}")


def decode_response(call: Call[T], response: httpx.Response) -> T:
    """The parsed value of a finished response, or the broker's error raised."""
    if response.status_code >= 400:
        raise error_from_response(response)
    if response.status_code == 204 or not response.content:
        return call.parse(None)
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise MiniMQError(f"broker sent invalid JSON: {response.text[:200]!r}") from exc
    return call.parse(payload)


def unavailable(base_url: str, exc: httpx.HTTPError) -> BrokerUnavailable:
    reason = str(exc) or type(exc).__name__
    return BrokerUnavailable(f"broker at {base_url} unavailable: {reason}")


def read_timeout(timeout: float, call: Call[Any]) -> httpx.Timeout:
    """The client timeout, with the read phase stretched by the call's long-poll wait."""
    return httpx.Timeout(timeout, read=timeout + call.wait_ms / 1000)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Up to ``retries`` further attempts with capped, jittered exponential backoff."""

    retries: int = 3
    base_delay: float = 0.1
    max_delay: float = 2.0

    def backoff(self, attempt: int) -> float:
        # Full jitter: clients retrying after a broker restart do not stampede together.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def delay_after_error(
        self, call: Call[Any], exc: httpx.HTTPError, attempt: int
    ) -> float | None:
        """Seconds to wait before retrying after ``exc``, or ``None`` to give up."""
        if attempt >= self.retries:
            return None
        if isinstance(exc, _NOT_SENT) or (
            call.idempotent and isinstance(exc, httpx.TransportError)
        ):
            return self.backoff(attempt)
        return None

    def delay_after_status(self, call: Call[Any], status: int, attempt: int) -> float | None:
        """Seconds to wait before retrying an answer with ``status``, or ``None`` to keep it."""
        if attempt >= self.retries or status != 503 or not call.idempotent:
            return None
        return self.backoff(attempt)
