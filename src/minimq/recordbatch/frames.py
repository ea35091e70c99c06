"""Kafka RecordBatch v2 frames: the unit MiniMQ writes to and reads from segments.

Byte layout of one batch (big-endian; the CRC-32C covers ``attributes`` to the
end of the batch, so ``baseOffset``, ``batchLength`` and ``partitionLeaderEpoch``
can be patched without recomputing it)::

    offset size field
         0    8 baseOffset            int64   offset of the first record
         8    4 batchLength           int32   bytes after this field
        12    4 partitionLeaderEpoch  int32   who wrote it: -1 MiniMQ, 0 a Kafka client
        16    1 magic                 int8    2
        17    4 crc                   uint32  CRC-32C of bytes 21..end
        21    2 attributes            int16   bits 0-2 codec, 3 timestamp type,
                                              4 transactional, 5 control
        23    4 lastOffsetDelta       int32   recordCount - 1
        27    8 baseTimestamp         int64   timestamp of the first record (ms)
        35    8 maxTimestamp          int64   largest record timestamp (ms)
        43    8 producerId            int64   -1 unless an idempotent producer's
        51    2 producerEpoch         int16   -1
        53    4 baseSequence          int32   -1
        57    4 recordCount           int32
        61    . records

Each record is ``length`` followed by that many bytes of ``attributes`` (int8,
0), ``timestampDelta``, ``offsetDelta``, ``keyLength`` (-1 for null), key,
``valueLength`` (-1 for null), value, ``headerCount`` and headers as
``keyLength, key (UTF-8), valueLength, value``; every length and delta is a
zigzag varint.

Batches written by MiniMQ (HTTP produce) are uncompressed, carry no
producer id and :data:`OWN_BATCH_EPOCH`.  Batches from Kafka clients are
stored as they came, with only ``baseOffset`` and ``partitionLeaderEpoch``
(set to :data:`CLIENT_BATCH_EPOCH`) overwritten, both outside the CRC:
they may be compressed (:mod:`minimq.recordbatch.compression`; everything after
the header is one compressed block, decoded here with a bound of
:data:`MAX_DECOMPRESSED_BYTES`) and carry an idempotent producer's id, epoch
and first sequence.  Control batches are never decoded into records.

Origin.  MiniMQ has no leader epochs, so ``partitionLeaderEpoch`` records
who wrote a batch, for free and on disk: the decoded read returns the
values of a client's batch as :class:`~minimq.core.records.ClientBytes`
(bytes no transport of MiniMQ checked) and those of MiniMQ's own batches as
plain ``bytes``, so the HTTP API checks only the former against its value
rule.  A data directory from a release before the mark holds only -1, and
rightly so: those releases had no Kafka listener, so every batch in it was
MiniMQ's own.  Reads and recovery accept exactly these two values; they
differ in all 32 bits, so no small damage turns one origin into the other,
and any other value is damage (a malformed header).

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

from aiokafka.errors import KafkaError
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from crc32c import crc32c

from minimq.core.records import ClientBytes, NewRecord, Record
from minimq.errors import CorruptLog, InvalidRequest, MessageTooLarge
from minimq.recordbatch.compression import CODEC_MASK, NONE, DecompressionFailed, decompress

HEADER: Final = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE: Final = HEADER.size  # 61
LENGTH_PREFIX: Final = 12  # baseOffset + batchLength: bytes not counted by batchLength
CRC_START: Final = 21
MAGIC: Final = 2
OWN_BATCH_EPOCH: Final = -1
"""``partitionLeaderEpoch`` of a batch MiniMQ encoded (``append``: values a transport checked).

Kafka's "no epoch", the value every batch carried before the origin mark.
"""
CLIENT_BATCH_EPOCH: Final = 0
"""``partitionLeaderEpoch`` of a Kafka client's batch stored verbatim (``append_batches``).

Outside the CRC, so the client's CRC stays valid; 0 is also the leader epoch
Kafka's Metadata answers for MiniMQ's partitions, what a consumer expects.
"""
ORIGIN_EPOCHS: Final = frozenset({OWN_BATCH_EPOCH, CLIENT_BATCH_EPOCH})
LEADER_EPOCH: Final = slice(12, 16)
CLIENT_BATCH_EPOCH_BYTES: Final = CLIENT_BATCH_EPOCH.to_bytes(4, "big", signed=True)
MAX_BATCH_BYTES: Final = 64 * 1024 * 1024
# The most a compressed batch may decode to (checked at produce, bounded at read).
MAX_DECOMPRESSED_BYTES: Final = 16 * 1024 * 1024
TIMESTAMP_TYPE_BIT: Final = 0x08  # 1: LogAppendTime
TRANSACTIONAL_BIT: Final = 0x10
CONTROL_BIT: Final = 0x20
NO_PRODUCER_ID: Final = -1
_BASE_OFFSET: Final = struct.Struct(">q")
_PLAIN_PREFIX: Final = struct.Struct(">qi")  # baseOffset, batchLength of a decoded frame
_ATTRIBUTES: Final = struct.Struct(">h")
ATTRIBUTES_AT: Final = 21
# partitionLeaderEpoch (at 12) and attributes (at 21) in one unpack, for decoding.
_EPOCH_AND_ATTRIBUTES: Final = struct.Struct(">i5xh")
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
    attributes: int = 0
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = -1
    base_sequence: int = -1

    @property
    def codec(self) -> int:
        return self.attributes & CODEC_MASK

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

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
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
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
        attributes,
        producer_id,
        producer_epoch,
        base_sequence,
    )


def header_is_plausible(header: BatchHeader) -> bool:
    """Cheap structural check before trusting ``total_size`` to hop to the next batch.

    The CRC does not cover the first 21 bytes; checking the magic and the leader
    epoch (one of the two origin marks MiniMQ writes) and, in the segment, the
    base offset chain catches damage there.
    """
    return (
        header.magic == MAGIC
        and header.leader_epoch in ORIGIN_EPOCHS
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
    epoch, attributes = _EPOCH_AND_ATTRIBUTES.unpack_from(frame, LEADER_EPOCH.start)
    if attributes & CONTROL_BIT:
        return [], 0
    if attributes & CODEC_MASK != NONE:
        frame = plain_frame(frame, attributes)
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
    try:
        if epoch == OWN_BATCH_EPOCH:
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
        else:
            # Not MiniMQ's own batch, so its values are a client's (see "Origin").
            # A comprehension of its own keeps MiniMQ's batches as fast as before;
            # wrapping here costs ~0.12 µs a record, a second pass over the
            # records ~0.29 µs (measured, 100-byte values).
            client = ClientBytes
            records = [
                new(
                    Record,
                    (
                        r.offset,
                        r.timestamp,
                        r.key,
                        None if (v := r.value) is None else client(v),
                        (count(len(h)) or tuple(h)) if (h := r.headers) else (),
                    ),
                )
                for r in items
            ]
    except (KafkaError, UnicodeDecodeError) as exc:
        # A CRC-valid batch from a client whose records do not parse (header
        # names must be UTF-8): its records cannot be served decoded.
        raise CorruptLog(
            f"batch at offset {batch.base_offset} holds records that do not decode: {exc}"
        ) from None
    return records, sum(counts)


def plain_frame(frame: bytes | bytearray | memoryview, attributes: int) -> bytearray:
    """An uncompressed copy of a compressed frame, for decoding only (its CRC is not valid).

    Raises ``CorruptLog`` when the records do not decompress within
    :data:`MAX_DECOMPRESSED_BYTES` (a batch checked at produce always does).
    """
    view = memoryview(frame)
    try:
        records = decompress(attributes & CODEC_MASK, view[HEADER_SIZE:], MAX_DECOMPRESSED_BYTES)
    except DecompressionFailed as exc:
        base_offset = _BASE_OFFSET.unpack_from(view)[0]
        raise CorruptLog(f"batch at offset {base_offset} cannot be decoded: {exc}") from None
    plain = bytearray(HEADER_SIZE + len(records))
    plain[:HEADER_SIZE] = view[:HEADER_SIZE]
    plain[HEADER_SIZE:] = records
    _PLAIN_PREFIX.pack_into(plain, 0, _BASE_OFFSET.unpack_from(view)[0], len(plain) - LENGTH_PREFIX)
    _ATTRIBUTES.pack_into(plain, ATTRIBUTES_AT, attributes & ~CODEC_MASK)
    return plain


def payload_size(record: Record) -> int:
    """A record's payload bytes: key, value and headers."""
    size = len(record.key or b"") + len(record.value or b"")
    for name, value in record.headers:
        size += len(name) + len(value or b"")
    return size


def read_cost(record: Record) -> int:
    """What a record counts against a read's ``max_bytes``: its payload, and its headers."""
    return payload_size(record) + HEADER_READ_BYTES * len(record.headers)
