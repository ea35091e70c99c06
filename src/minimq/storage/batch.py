"""Kafka RecordBatch v2 frames: the unit MiniMQ writes to and reads from segments.

Byte layout of one batch (big-endian; the CRC-32C covers ``attributes`` to the
end of the batch, so ``baseOffset``, ``batchLength`` and ``partitionLeaderEpoch``
can be patched without recomputing it)::

    offset size field
         0    8 baseOffset            int64   offset of the first record
         8    4 batchLength           int32   bytes after this field
        12    4 partitionLeaderEpoch  int32   -1 (MiniMQ has no leader epochs)
        16    1 magic                 int8    2
        17    4 crc                   uint32  CRC-32C of bytes 21..end
        21    2 attributes            int16   0 (no compression, create time)
        23    4 lastOffsetDelta       int32   recordCount - 1
        27    8 baseTimestamp         int64   timestamp of the first record (ms)
        35    8 maxTimestamp          int64   largest record timestamp (ms)
        43    8 producerId            int64   -1
        51    2 producerEpoch         int16   -1
        53    4 baseSequence          int32   -1
        57    4 recordCount           int32
        61    . records

Each record is ``length`` followed by that many bytes of ``attributes`` (int8,
0), ``timestampDelta``, ``offsetDelta``, ``keyLength`` (-1 for null), key,
``valueLength`` (-1 for null), value, ``headerCount`` and headers as
``keyLength, key (UTF-8), valueLength, value``; every length and delta is a
zigzag varint.

Record encoding and decoding use aiokafka's C-accelerated implementation (it
falls back to aiokafka's own pure-Python code where the extension is missing):
measured here, it builds ~6 M and decodes ~3 M records/s, twice and four times
what a pure-Python codec reached.  This module owns the header: it patches the
base offset, parses headers for scans and verifies CRCs with the ``crc32c``
package.

What a read costs.  A record header costs far more to serve than its bytes
suggest: it is decoded into a name and a value here and written out as JSON
by the transport, about 0.7 µs each, while value bytes cost about 3 ns each
(a 64 MiB fetch of plain records: ~180 ms of decoding and serializing). So a
read charges each header :data:`HEADER_READ_BYTES` against its ``max_bytes``
besides its name and value (:func:`read_cost`): whatever its records carry, a
fetch costs about what a fetch of plain records of that size costs. Without
it, 64 MiB of records with 90,000 headers each (stored before the broker
bounded headers per record) held the event loop for 4.6 s per fetch.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import islice
from typing import Final, NamedTuple

from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from crc32c import crc32c

from minimq.errors import InvalidRequest, MessageTooLarge
from minimq.storage.api import NewRecord, Record

HEADER: Final = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE: Final = HEADER.size  # 61
LENGTH_PREFIX: Final = 12  # baseOffset + batchLength: bytes not counted by batchLength
CRC_START: Final = 21
MAGIC: Final = 2
NO_LEADER_EPOCH: Final = -1
MAX_BATCH_BYTES: Final = 64 * 1024 * 1024
_BASE_OFFSET: Final = struct.Struct(">q")
# See "What a read costs" above: ~0.7 µs per header / ~3 ns per value byte.
HEADER_READ_BYTES: Final = 256
_NO_HEADERS: Final[list[tuple[str, bytes]]] = []


class BatchHeader(NamedTuple):
    """The fixed fields of one batch that scans and seeks need."""

    base_offset: int
    total_size: int  # whole frame, including the 12-byte length prefix
    magic: int
    crc: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    record_count: int
    leader_epoch: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1


def parse_header(buffer: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """Decode the header at ``position``; the caller checks that 61 bytes are there."""
    (
        base_offset,
        batch_length,
        leader_epoch,
        magic,
        crc,
        _attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        _producer_id,
        _producer_epoch,
        _base_sequence,
        record_count,
    ) = HEADER.unpack_from(buffer, position)
    return BatchHeader(
        base_offset,
        batch_length + LENGTH_PREFIX,
        magic,
        crc,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        record_count,
        leader_epoch,
    )


def header_is_plausible(header: BatchHeader) -> bool:
    """Cheap structural check before trusting ``total_size`` to hop to the next batch.

    The CRC does not cover the first 21 bytes; checking the magic and the leader
    epoch MiniMQ always writes (and, in the segment, the base offset chain)
    catches damage there.
    """
    return (
        header.magic == MAGIC
        and header.leader_epoch == NO_LEADER_EPOCH
        and HEADER_SIZE <= header.total_size <= MAX_BATCH_BYTES
        and header.record_count == header.last_offset_delta + 1
        and header.record_count > 0
        and header.base_offset >= 0
    )


def crc_matches(frame: bytes | bytearray | memoryview, header: BatchHeader) -> bool:
    """True when the frame's CRC-32C matches the one stored in its header."""
    return bool(crc32c(memoryview(frame)[CRC_START : header.total_size]) == header.crc)


def encode_batch(base_offset: int, records: Sequence[NewRecord], now_ms: int) -> bytearray:
    """One frame holding ``records`` at consecutive offsets from ``base_offset``.

    Records without a timestamp get ``now_ms``.  Raises ``MessageTooLarge`` when
    the frame would exceed ``MAX_BATCH_BYTES`` and ``InvalidRequest`` for
    fields of the wrong type.
    """
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, MAX_BATCH_BYTES)
    append = builder.append
    try:
        # Tuple unpacking and one shared empty header list (the builder only
        # reads it) instead of attribute reads and a new list per record.
        for delta, (key, value, headers, timestamp) in enumerate(records):
            if (
                append(
                    delta,
                    now_ms if timestamp is None else timestamp,
                    key,
                    value,
                    list(headers) if headers else _NO_HEADERS,
                )
                is None
            ):
                raise MessageTooLarge(f"a batch may hold at most {MAX_BATCH_BYTES} bytes")
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise InvalidRequest(
            "records need bytes-or-None keys and values, (str, bytes) headers and int "
            f"timestamps: {exc}"
        ) from None
    frame: bytearray = builder.build()
    if len(frame) > MAX_BATCH_BYTES:
        raise MessageTooLarge(f"a batch may hold at most {MAX_BATCH_BYTES} bytes")
    _BASE_OFFSET.pack_into(frame, 0, base_offset)
    return frame


def decode_records(
    frame: bytes | bytearray | memoryview, first_offset: int, max_records: int
) -> list[Record]:
    """Records of one CRC-checked frame with offset >= ``first_offset``, at most ``max_records``."""
    return decode_records_counting_headers(frame, first_offset, max_records)[0]


def decode_records_counting_headers(
    frame: bytes | bytearray | memoryview, first_offset: int, max_records: int
) -> tuple[list[Record], int]:
    """:func:`decode_records`, and how many headers those records carry in all."""
    if max_records <= 0:
        return [], 0
    batch = DefaultRecordBatch(frame)
    skip = max(first_offset - batch.base_offset, 0)
    # islice skips inside C; the comprehension is the fastest way measured to
    # turn aiokafka's records into ours (tuple.__new__ bypasses NamedTuple.__new__).
    items = islice(batch, skip, skip + max_records)
    new = tuple.__new__
    # Counted only where a record has headers (append returns None, so ``or``
    # goes on to the tuple): free for records without, unlike a second pass.
    counts: list[int] = []
    count = counts.append
    records = [
        new(
            Record,
            (
                r.offset,
                r.timestamp,
                r.key,
                r.value,
                (count(len(h)) or tuple(h)) if (h := r.headers) else (),
            ),
        )
        for r in items
    ]
    return records, sum(counts)


def payload_size(record: Record) -> int:
    """A record's payload bytes: key, value and headers."""
    size = len(record.key or b"") + len(record.value or b"")
    for name, value in record.headers:
        size += len(name) + len(value or b"")
    return size


def read_cost(record: Record) -> int:
    """What a record counts against a read's ``max_bytes``: its payload, and its headers."""
    return payload_size(record) + HEADER_READ_BYTES * len(record.headers)
