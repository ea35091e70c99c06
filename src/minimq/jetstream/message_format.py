"""How one MiniMQ record is one NATS message: value as payload, the rest in headers.

Headers (values are ASCII only, because NATS turns CR/LF in a header value into spaces and the
``msg get`` API mangles non-ASCII; everything not a plain number is base64)::

    Mq-Ts      producer (or broker) timestamp, decimal milliseconds
    Mq-Key     "k" + base64 of the key; absent for a null key
    Mq-Null    "1" when the value is null (the payload is then empty)
    Mq-H       base64 of the record headers: per header, uint16 name length, UTF-8 name,
               int32 value length (-1 null), value
    Mq-Origin  "kafka" for a Kafka client's record (read back as ClientBytes); absent for
               MiniMQ's own
    Mq-Codec   the compression codec (1-4) of the client's batch the record came in; absent
               for 0, so that frames read back are compressed as the client sent them

Nothing here talks to NATS; :func:`message_size` is what a publish will put on the wire, so
that an oversize record is refused before it reaches the server (which would close the
connection instead of answering).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Final

from minimq.core.records import ClientBytes, Header, NewRecord, Record
from minimq.errors import InvalidRequest

TIMESTAMP: Final = "Mq-Ts"
KEY: Final = "Mq-Key"
NULL_VALUE: Final = "Mq-Null"
HEADERS: Final = "Mq-H"
ORIGIN: Final = "Mq-Origin"
CODEC: Final = "Mq-Codec"
KAFKA_ORIGIN: Final = "kafka"

_NAME_LENGTH: Final = struct.Struct(">H")
_VALUE_LENGTH: Final = struct.Struct(">i")
# nats-py writes "NATS/1.0\r\n", then "Name: value\r\n" per header, then "\r\n".
_HEADER_BLOCK_OVERHEAD: Final = len(b"NATS/1.0\r\n") + len(b"\r\n")
_PER_HEADER_OVERHEAD: Final = len(b": \r\n")


def encode_headers(headers: tuple[Header, ...]) -> str:
    """Record headers as one base64 string (names UTF-8, values bytes or None)."""
    out = bytearray()
    for name, value in headers:
        raw_name = name.encode("utf-8")
        out += _NAME_LENGTH.pack(len(raw_name))
        out += raw_name
        if value is None:
            out += _VALUE_LENGTH.pack(-1)
        else:
            out += _VALUE_LENGTH.pack(len(value))
            out += value
    return base64.b64encode(out).decode("ascii")


def decode_headers(text: str) -> tuple[Header, ...]:
    raw = base64.b64decode(text)
    headers: list[Header] = []
    position = 0
    while position < len(raw):
        (name_length,) = _NAME_LENGTH.unpack_from(raw, position)
        position += _NAME_LENGTH.size
        name = raw[position : position + name_length].decode("utf-8")
        position += name_length
        (value_length,) = _VALUE_LENGTH.unpack_from(raw, position)
        position += _VALUE_LENGTH.size
        if value_length < 0:
            headers.append((name, None))  # type: ignore[arg-type]  # Kafka allows null values
        else:
            headers.append((name, raw[position : position + value_length]))
            position += value_length
    return tuple(headers)


def to_message(
    record: NewRecord, now_ms: int, *, from_client: bool, codec: int = 0
) -> tuple[dict[str, str], bytes]:
    """The NATS headers and payload of one record."""
    key, value, headers, timestamp = record
    if key is not None and not isinstance(key, bytes | bytearray | memoryview):
        raise InvalidRequest("record keys must be bytes or None")
    if value is not None and not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidRequest("record values must be bytes or None")
    stamp = now_ms if timestamp is None else timestamp
    if not isinstance(stamp, int):
        raise InvalidRequest("record timestamps must be integers")
    fields = {TIMESTAMP: str(stamp)}
    if key is not None:
        fields[KEY] = "k" + base64.b64encode(key).decode("ascii")
    if value is None:
        fields[NULL_VALUE] = "1"
    if headers:
        try:
            fields[HEADERS] = encode_headers(headers)
        except (AttributeError, TypeError, struct.error) as exc:
            raise InvalidRequest(f"record headers must be (str, bytes) pairs: {exc}") from None
    if from_client:
        fields[ORIGIN] = KAFKA_ORIGIN
    if codec:
        fields[CODEC] = str(codec)
    return fields, b"" if value is None else bytes(value)


def message_size(headers: Mapping[str, str], payload: bytes) -> int:
    """Bytes nats-py sends for this message body: header block plus payload."""
    size = _HEADER_BLOCK_OVERHEAD + len(payload)
    for name, value in headers.items():
        size += len(name) + len(value) + _PER_HEADER_OVERHEAD
    return size


def to_record(offset: int, headers: Mapping[str, str], payload: bytes) -> Record:
    """The record a stored message holds (the message's sequence is ``offset + 1``)."""
    key_field = headers.get(KEY)
    key = None if key_field is None else base64.b64decode(key_field[1:])
    value: bytes | None
    if headers.get(NULL_VALUE) == "1":
        value = None
    elif headers.get(ORIGIN) == KAFKA_ORIGIN:
        value = ClientBytes(payload)
    else:
        value = bytes(payload)
    header_field = headers.get(HEADERS)
    return Record(
        offset,
        int(headers.get(TIMESTAMP, "0")),
        key,
        value,
        () if header_field is None else decode_headers(header_field),
    )


def batch_kind(headers: Mapping[str, str]) -> tuple[bool, int]:
    """Which kind of frame the record is served in: (a Kafka client's?, compression codec)."""
    codec = headers.get(CODEC, "0")
    return headers.get(ORIGIN) == KAFKA_ORIGIN, int(codec) if codec.isdigit() else 0
