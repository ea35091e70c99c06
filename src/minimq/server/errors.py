"""The one place where error codes become HTTP status codes and JSON bodies."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from minimq.errors import (
    ExpectationFailed,
    GroupConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    LimitReached,
    MessageTooLarge,
    MiniMQError,
    NotCoordinator,
    NotFound,
    OffsetOutOfRange,
    RequestTimeout,
    RequestTooLarge,
    ResponseBufferFull,
    StorageError,
    StorageFull,
    TooManyConnections,
    TopicAlreadyExists,
    Unauthorized,
)

# Checked in order, so subclasses come before their bases.
_STATUS_BY_ERROR: tuple[tuple[type[MiniMQError], int], ...] = (
    (IdempotencyKeyReused, 422),
    (InvalidRequest, 400),
    (Unauthorized, 401),
    (NotFound, 404),
    (RequestTimeout, 408),
    (ExpectationFailed, 417),
    (TopicAlreadyExists, 409),
    (LimitReached, 409),
    (GroupConflict, 409),
    (RequestTooLarge, 413),
    (MessageTooLarge, 413),
    (OffsetOutOfRange, 416),
    (StorageFull, 507),
    (StorageError, 503),
    (TooManyConnections, 503),
    (NotCoordinator, 503),
    (ResponseBufferFull, 503),
)

# Refusals of a busy broker, not of the request: the client may send it again soon.
_RETRY_SOON = frozenset({TooManyConnections.code, ResponseBufferFull.code, NotCoordinator.code})

# Errors that aiohttp itself raises before a handler runs.
_CODE_BY_HTTP_STATUS = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    417: ExpectationFailed.code,
}


def status_for(error: MiniMQError) -> int:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    """The JSON error answer; ``details`` (see :mod:`minimq.errors`) go beside ``error``."""
    payload: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        payload.update(details)
    body = orjson.dumps(payload)
    response = web.Response(status=status, body=body, content_type="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="minimq"'
    elif code in _RETRY_SOON:
        response.headers["Retry-After"] = "1"
    return response


def internal_error_response(status: int = 500) -> web.Response:
    """The answer to a bug: no detail for the client, the traceback is in the log."""
    return error_response(status, "INTERNAL_ERROR", "internal error; see the broker log")


def response_for_error(error: MiniMQError) -> web.Response:
    return error_response(status_for(error), error.code, error.message, error.details)


def response_for_http_exception(exc: web.HTTPException) -> web.Response:
    status = exc.status
    code = _CODE_BY_HTTP_STATUS.get(status, "INVALID_REQUEST" if status < 500 else "INTERNAL_ERROR")
    response = error_response(status, code, exc.reason)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    return response
