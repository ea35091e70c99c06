"""Kafka request decoding and response encoding, on kio's generated schemas.

The protocol is data, not code: kio holds one frozen dataclass per API key and
version (generated from Kafka's JSON message specs), with readers and writers
built from their fields. This module adds what a server needs around them:

* :func:`peek_header` reads the three fields that open every request header
  version (api_key, api_version, correlation_id) without trusting the rest,
  so an unsupported version can still be answered.
* :func:`decode_request` reads header v1 (client_id) and the body. Every
  decoding failure kio (or the frame) can produce becomes :class:`MalformedRequest`;
  the Rust readers check each length against the bytes left before reading.
* :func:`encode_response` writes response header v0 (the correlation id; the
  only header the non-flexible versions served here use, and ApiVersions'
  header at every version) and the body, length-prefixed.
* :func:`build` / :func:`error_response` make a response of the right version
  from the fields a handler names, dropping those the version does not have.

Only non-flexible versions are decoded (the advertised ranges hold no other;
ApiVersions v3+ is answered from its header alone, KIP-511).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import struct
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, NamedTuple, Union, get_args, get_origin

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import SerialError
from kio.serial.readers import read_nullable_legacy_string as _read_client_id

_HEAD = struct.Struct(">hhi")
_LENGTH = struct.Struct(">i")
_CORRELATION = struct.Struct(">ii")
HEAD_BYTES: Final = _HEAD.size
_read_header = entity_reader(RequestHeader)


class MalformedRequest(Exception):
    """A request frame that cannot be decoded; the connection is closed."""


class RequestHead(NamedTuple):
    api_key: int
    api_version: int
    correlation_id: int


def peek_header(frame: bytes) -> RequestHead:
    """The api_key, api_version and correlation_id every request header starts with."""
    if len(frame) < HEAD_BYTES:
        raise MalformedRequest(f"a {len(frame)}-byte frame is too short for a request header")
    return RequestHead(*_HEAD.unpack_from(frame))


def peek_client_id(frame: bytes) -> str | None:
    """The client_id after the header's first fields (every header version from v1 has it)."""
    try:
        return _read_client_id(frame, HEAD_BYTES)[0]
    except (SerialError, ValueError, UnicodeError):
        return None


@cache
def schemas(api_key: int, api_version: int) -> tuple[type[Any], type[Any]]:
    """The kio (request, response) classes of one API version."""
    return load_request_schema(api_key, api_version), load_response_schema(api_key, api_version)


# Caches keyed by class (the generated classes are hashable; mypy cannot see it on type[Any]).
_READERS: dict[type[Any], Any] = {}
_WRITERS: dict[type[Any], Any] = {}
_FIELDS: dict[type[Any], frozenset[str]] = {}


def _body_reader(request_type: type[Any]) -> Any:
    reader = _READERS.get(request_type)
    if reader is None:
        reader = _READERS[request_type] = entity_reader(request_type)
    return reader


def _body_writer(response_type: type[Any]) -> Any:
    writer = _WRITERS.get(response_type)
    if writer is None:
        writer = _WRITERS[response_type] = entity_writer(response_type)
    return writer


def decode_request(frame: bytes, request_type: type[Any]) -> tuple[str | None, Any, int]:
    """(client_id, request, unread trailing bytes) of a frame of ``request_type``."""
    try:
        header, offset = _read_header(frame, 0)
        request, used = _body_reader(request_type)(frame, offset)
    except (SerialError, ValueError, OverflowError, UnicodeError, TypeError) as exc:
        raise MalformedRequest(f"{type(exc).__name__}: {exc}") from None
    return header.client_id, request, len(frame) - offset - used


@dataclass(frozen=True, slots=True)
class EncodedBody:
    """A response body its handler encoded itself, as ``size`` bytes in ``pieces``.

    For Fetch: its record batches are views of what the log read, and go into
    the frame with one copy, instead of three through kio's writer (a join,
    the writer's buffer, its ``getvalue``), which measured about 63 % of the
    broker's CPU per consumed message.
    """

    pieces: Sequence[bytes | memoryview]
    size: int


def encode_response(correlation_id: int, response: Any) -> bytes:
    """A length-prefixed response frame: header v0 (correlation id), then ``response``."""
    if isinstance(response, EncodedBody):
        head = _CORRELATION.pack(response.size + _CORRELATION.size - _LENGTH.size, correlation_id)
        return b"".join((head, *response.pieces))
    buffer = io.BytesIO()
    buffer.write(_CORRELATION.pack(0, correlation_id))
    _body_writer(type(response))(buffer, response)
    frame = buffer.getbuffer()
    _LENGTH.pack_into(frame, 0, len(frame) - _LENGTH.size)
    del frame
    return buffer.getvalue()


def encode_raw(payload: bytes) -> bytes:
    """A length-prefixed frame with no Kafka header (SASL after SaslHandshake v0)."""
    return _LENGTH.pack(len(payload)) + payload


def _field_names(entity_type: type[Any]) -> frozenset[str]:
    names = _FIELDS.get(entity_type)
    if names is None:
        names = _FIELDS[entity_type] = frozenset(f.name for f in dataclasses.fields(entity_type))
    return names


def build(entity_type: type[Any], fields: dict[str, Any]) -> Any:
    """``entity_type(**fields)`` without the fields this version does not have.

    Lists become the tuples kio's writers expect.
    """
    names = _field_names(entity_type)
    return entity_type(
        **{
            name: tuple(value) if isinstance(value, list) else value
            for name, value in fields.items()
            if name in names
        }
    )


def nested_type(response_type: type[Any], name: str) -> type[Any]:
    """The nested entity ``name`` of the module that defines ``response_type``."""
    found = getattr(sys.modules[response_type.__module__], name, None)
    if not isinstance(found, type):
        raise LookupError(
            f"{response_type.__qualname__} v{response_type.__version__} has no {name}"
        )
    return found


def has_top_level_error(response_type: type[Any]) -> bool:
    return "error_code" in _field_names(response_type)


def error_response(response_type: type[Any], code: ErrorCode) -> Any:
    """A response of ``response_type`` that says only ``code``: every list empty.

    Its top-level ``error_code`` is ``code``; the other fields take their kio
    default, or an empty value of their type (-1 for ids, as Kafka's own
    error responses have: no generation, no producer, no coordinator).
    """
    values: dict[str, Any] = {}
    for field in dataclasses.fields(response_type):
        if field.name == "error_code":
            values[field.name] = code
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            values[field.name] = _empty(field)
    return response_type(**values)


def _empty(field: dataclasses.Field[Any]) -> Any:
    kind = field.type
    if get_origin(kind) is tuple:
        return ()
    if get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind):
        return None
    kafka_type = field.metadata.get("kafka_type")
    if kafka_type is None and dataclasses.is_dataclass(kind):
        return error_response(kind, ErrorCode.none)  # type: ignore[arg-type]
    if kafka_type == "error_code":
        return ErrorCode.none
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return datetime.timedelta(0)
    if kafka_type == "string":
        return ""
    if kafka_type in ("bytes", "records"):
        return b""
    if kafka_type == "bool":
        return False
    if kafka_type == "uuid":
        return None
    return -1 if field.name.endswith("_id") or field.name == "leader" else 0
