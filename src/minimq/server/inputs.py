"""Reading and validating request input: bodies, JSON fields and query parameters.

Every function raises an :class:`~minimq.errors.InvalidRequest` (or a
subclass) with a message naming the offending field, so handlers never see
wrong types and never produce a 500 for bad input.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from aiohttp import hdrs, web

from minimq.core import StartPosition
from minimq.core.topic_config import validate_topic_name
from minimq.errors import InvalidRequest, RequestTimeout, RequestTooLarge
from minimq.server import strict_json
from minimq.server.body_spool import MEMORY_BYTES as SPOOL_MEMORY_BYTES
from minimq.server.body_spool import BodySpool

T = TypeVar("T")

_INTEGER = re.compile(r"^-?[0-9]{1,18}$")
_GROUP_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,249}$")
MAX_WAIT_MS = 30_000
# Read bodies in pieces of this size, not "everything buffered, up to the limit":
# aiohttp joins its buffered chunks into one object per read, and those large,
# short-lived objects grew the broker's RSS by 20-45 MiB when 16 clients streamed
# chunked bodies; in 64 KiB pieces the growth was under 9 MiB.
_READ_PIECE_BYTES = 64 * 1024
MAX_FETCH_RECORDS = 10_000
MAX_PRODUCE_RECORDS = 10_000
# The one expectation the broker meets (lower case; the header's value is not).
CONTINUE = "100-continue"
_CONTINUE_LINE = b"HTTP/1.1 100 Continue\r\n\r\n"


async def read_json(request: web.Request, max_bytes: int, timeout_s: float) -> Any:
    """The request body parsed strictly, bounded in size and in time.

    A declared Content-Length over ``max_bytes`` is refused before reading;
    a chunked body is refused as soon as it grows past ``max_bytes``. A body
    that is still arriving must arrive within ``timeout_s`` (slow clients).
    A client waiting for ``100 Continue`` gets it here, after those checks,
    so a body the broker would refuse is never asked for.
    """
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise RequestTooLarge(f"request body of {declared} bytes exceeds {max_bytes} bytes")
    await _continue_if_expected(request)
    try:
        raw = await _read_bounded(request, max_bytes, timeout_s)
    except web.RequestPayloadError as exc:
        # aiohttp could not decode the body (a Content-Encoding that does not
        # match it): the client's mistake, not a broker fault. The rest of the
        # body cannot be decoded either: mark it ended, so aiohttp does not try
        # to drain it (and log the decode error again as a broker fault), and
        # close the connection once the answer is written.
        request.content.feed_eof()
        if request.protocol is not None:
            request.protocol.close()
        raise InvalidRequest(
            f"the request body could not be decoded: {exc.__cause__ or exc}"
        ) from None
    return parse_body(raw)


async def _continue_if_expected(request: web.Request) -> None:
    # Only while the body is still to come: one that arrived needs no invitation.
    if (
        request.version >= (1, 1)
        and not request.content.is_eof()
        and request.headers.get(hdrs.EXPECT, "").lower() == CONTINUE
    ):
        await request.writer.write(_CONTINUE_LINE)
        # Not the answer: aiohttp's error handling must still see a response not started.
        request.writer.output_size = 0


async def _read_bounded(request: web.Request, max_bytes: int, timeout_s: float) -> bytes:
    if request.content.is_eof():
        # Already fully buffered (the common small request): take it without
        # awaiting, so no timer and no read coroutine per request.
        raw = request.content.read_nowait()
        if len(raw) > max_bytes:
            raise RequestTooLarge(f"request body exceeds {max_bytes} bytes")
        return raw
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_capped(request, max_bytes)
    except TimeoutError:
        raise RequestTimeout(f"request body not received within {timeout_s:g}s") from None
    except ConnectionResetError:
        # The client hung up mid-body: nobody reads the answer, but this is
        # bad input like any other, not a broker fault worth a traceback.
        raise InvalidRequest("the client hung up before the body arrived") from None


def parse_body(raw: bytes) -> Any:
    """A complete request body parsed strictly; an empty one is refused."""
    if not raw:
        raise InvalidRequest("a JSON request body is required")
    return strict_json.loads(raw)


async def _read_capped(request: web.Request, max_bytes: int) -> bytes:
    # A declared length was checked against max_bytes already: keep it all in memory.
    memory = max_bytes if request.content_length is not None else SPOOL_MEMORY_BYTES
    with BodySpool(memory) as spool:
        while chunk := await request.content.read(
            min(_READ_PIECE_BYTES, max_bytes + 1 - spool.size)
        ):
            if spool.size + len(chunk) > max_bytes:
                raise RequestTooLarge(f"request body exceeds {max_bytes} bytes")
            spool.append(chunk)
        return spool.getvalue()


def topic_name(name: str) -> str:
    """``name`` if it is a valid topic name (which never escapes the data dir), else 400."""
    return validate_topic_name(name)


def group_name(name: str, what: str = "group") -> str:
    if not _GROUP_NAME.match(name):
        raise InvalidRequest(f"{what} must be 1 to 249 characters without control characters")
    return name


def json_object(value: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return cast(dict[str, Any], value)


def field(body: Mapping[str, Any], name: str, kind: type[T], *, required: bool = False) -> T | None:
    """``body[name]`` checked to be ``kind`` (bool is never an int); None when absent/null."""
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"{name!r} is required")
        return None
    if kind is int and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        # JSON Schema counts 5.0 as an integer, and so do we (exactly representable).
        value = int(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidRequest(f"{name!r} must be of type {_type_name(kind)}")
    return value


def int_field(
    body: Mapping[str, Any], name: str, low: int, high: int, *, required: bool = False
) -> int | None:
    value = field(body, name, int, required=required)
    if value is not None and not low <= value <= high:
        raise InvalidRequest(f"{name!r} must be between {low} and {high}")
    return value


def reject_unknown(body: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise InvalidRequest(f"unknown field(s) in {what}: {', '.join(sorted(unknown))}")


def _type_name(kind: type) -> str:
    return {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}.get(
        kind, kind.__name__
    )


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not _INTEGER.match(text):
        raise InvalidRequest(f"query parameter {name!r} must be an integer")
    value = int(text)
    if not low <= value <= high:
        raise InvalidRequest(f"query parameter {name!r} must be between {low} and {high}")
    return value


def query_bool(request: web.Request, name: str, default: bool) -> bool:
    text = request.query.get(name)
    if text is None:
        return default
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise InvalidRequest(f"query parameter {name!r} must be true or false")


def query_choice(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    text = request.query.get(name, default)
    if text not in choices:
        raise InvalidRequest(f"query parameter {name!r} must be one of {', '.join(choices)}")
    return text


def path_partition(request: web.Request) -> int:
    text = request.match_info["partition"]
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidRequest("partition must be a non-negative integer")
    return int(text)


def start_position(request: web.Request, offset_param: str) -> StartPosition:
    """``offset_param`` = earliest|latest|N, or ``timestamp`` = T (not both)."""
    offset = request.query.get(offset_param)
    timestamp = request.query.get("timestamp")
    if timestamp is not None:
        if offset is not None:
            raise InvalidRequest(f"give {offset_param!r} or 'timestamp', not both")
        return StartPosition.at_timestamp(query_int(request, "timestamp", 0, 0, 2**62))
    if offset is None or offset == "earliest":
        return StartPosition.earliest()
    if offset == "latest":
        return StartPosition.latest()
    return StartPosition.at_offset(query_int(request, offset_param, 0, 0, 2**62))
