"""Checking client RecordBatches before they are stored verbatim (Kafka produce).

A Kafka producer sends, per partition, one or more RecordBatch v2 frames
(layout in :mod:`minimq.recordbatch.frames`).  They are stored as they came but
for ``baseOffset`` and ``partitionLeaderEpoch``, so everything a reader will
trust is checked here first, cheapest first, and a produce with any bad
batch is refused whole (the errors of :mod:`minimq.core.batch_errors`):

1. framing: at least a header, ``magic`` 2 (older message formats are
   ``INVALID_RECORD``, as in Kafka for Produce v3+), ``batchLength`` within
   the bytes sent, no bytes left over (``CORRUPT_BATCH``);
2. size: a frame larger than the broker's record limit is ``MESSAGE_TOO_LARGE``
   (Kafka's ``max.message.bytes`` also bounds the batch, compressed);
3. CRC-32C over ``attributes`` to the end (``CORRUPT_BATCH``);
4. attributes: a known codec (``UNSUPPORTED_COMPRESSION``), not a control
   batch (``INVALID_RECORD``), not transactional (``TRANSACTIONS_UNSUPPORTED``);
5. counts: ``recordCount >= 1`` and ``lastOffsetDelta == recordCount - 1``
   (a producer's batch is never compacted); an idempotent producer's batch
   has a sequence and an epoch >= 0;
6. timestamps: ``baseTimestamp`` (the first record's) and ``maxTimestamp``
   against the topic's bounds (:mod:`minimq.core.timestamps`); records between
   are not decoded for this, so a record whose timestamp is below the first
   one's is not checked against ``message_timestamp_before_max_ms``;
7. a compressed batch must decompress, to at most
   :data:`~minimq.recordbatch.frames.MAX_DECOMPRESSED_BYTES` (``CORRUPT_BATCH``).

Records are not decoded one by one here.  Doing so (record count, offset
deltas, header bounds) costs ~0.1 µs a record in aiokafka's C decoder: 18 %
of a raw produce's whole CPU per record with 16 KiB batches of 100-byte
records, 53 % with 1 MB batches (``bench/kafka_storage.py``), far over the
10 % such a check may cost.  So
header bounds (:mod:`minimq.core.header_limits`) are enforced where records
*are* decoded instead: a decoded read charges every header against its byte
budget (:data:`~minimq.recordbatch.frames.HEADER_READ_BYTES`), and the decode of
one batch is bounded by the record limit (uncompressed) or by
``MAX_DECOMPRESSED_BYTES`` (compressed).  A CRC-valid batch whose records do
not parse cannot be served decoded (``CORRUPT_LOG`` to HTTP readers); Kafka
consumers receive it as it was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from crc32c import crc32c

from minimq.core.batch_errors import (
    CorruptBatch,
    InvalidRecordBatch,
    TransactionsUnsupported,
    UnsupportedCompression,
)
from minimq.core.timestamps import DEFAULT_BOUNDS, TimestampBounds, check_timestamps
from minimq.core.topic_config import TopicConfig
from minimq.errors import MessageTooLarge
from minimq.recordbatch.compression import (
    CODEC_MASK,
    CODEC_NAMES,
    NONE,
    DecompressionFailed,
    decompress,
)
from minimq.recordbatch.frames import (
    CONTROL_BIT,
    CRC_START,
    HEADER_SIZE,
    LENGTH_PREFIX,
    MAGIC,
    MAX_DECOMPRESSED_BYTES,
    NO_PRODUCER_ID,
    TRANSACTIONAL_BIT,
    BatchHeader,
    parse_header,
)

_MAGIC_AT: Final = 16


class CheckedBatch:
    """One frame that passed every check, copied so that its offset can be assigned."""

    __slots__ = ("frame", "header")

    def __init__(self, frame: bytearray, header: BatchHeader) -> None:
        self.frame = frame
        self.header = header


def check_batches(
    records: bytes | bytearray | memoryview,
    config: TopicConfig,
    now_ms: int,
    *,
    max_batch_bytes: int,
    timestamp_bounds: TimestampBounds = DEFAULT_BOUNDS,
) -> list[CheckedBatch]:
    """The batches of one produce partition entry, each checked (see the module docstring).

    Each frame is copied once, into a ``bytearray`` the log store stamps in
    place: its base offset, and the client-origin mark in
    ``partitionLeaderEpoch`` (``minimq.recordbatch.frames.CLIENT_BATCH_EPOCH``).
    """
    view = memoryview(records)
    if not view:
        raise CorruptBatch("the partition's records are empty")
    checked: list[CheckedBatch] = []
    position = 0
    while position < len(view):
        checked.append(
            _check_one(
                view,
                position,
                config,
                now_ms,
                max_batch_bytes=max_batch_bytes,
                timestamp_bounds=timestamp_bounds,
            )
        )
        position += checked[-1].header.total_size
    return checked


def _check_one(
    view: memoryview,
    position: int,
    config: TopicConfig,
    now_ms: int,
    *,
    max_batch_bytes: int,
    timestamp_bounds: TimestampBounds,
) -> CheckedBatch:
    left = len(view) - position
    if left < _MAGIC_AT + 1:
        raise CorruptBatch(f"{left} bytes at byte {position} are not a batch")
    magic = view[position + _MAGIC_AT]
    if magic != MAGIC:
        raise InvalidRecordBatch(
            f"record batches need magic {MAGIC} (message format v2), not {magic}"
        )
    if left < HEADER_SIZE:
        raise CorruptBatch(f"a truncated batch header at byte {position}")
    header = parse_header(view, position)
    total = header.total_size
    if total < HEADER_SIZE or total > left:
        raise CorruptBatch(
            f"batchLength {total - LENGTH_PREFIX} at byte {position} does not match the "
            f"{left} bytes sent"
        )
    if total > max_batch_bytes:
        raise MessageTooLarge(
            f"a batch of {total} bytes is larger than the {max_batch_bytes}-byte record limit"
        )
    frame_view = view[position : position + total]
    if crc32c(frame_view[CRC_START:]) != header.crc:
        raise CorruptBatch(f"CRC-32C mismatch in the batch at byte {position}")
    attributes = header.attributes
    codec = attributes & CODEC_MASK
    if codec not in CODEC_NAMES:
        raise UnsupportedCompression(f"compression codec {codec} is not supported")
    if attributes & CONTROL_BIT:
        raise InvalidRecordBatch("control batches may not be produced by clients")
    if attributes & TRANSACTIONAL_BIT:
        raise TransactionsUnsupported("MiniMQ does not support transactions")
    if header.record_count < 1 or header.last_offset_delta != header.record_count - 1:
        raise InvalidRecordBatch(
            f"recordCount {header.record_count} and lastOffsetDelta "
            f"{header.last_offset_delta} disagree (a produced batch holds recordCount "
            "records at deltas 0 to recordCount - 1)"
        )
    if header.producer_id != NO_PRODUCER_ID and (
        header.producer_id < 0 or header.base_sequence < 0 or header.producer_epoch < 0
    ):
        raise InvalidRecordBatch(
            f"producer id {header.producer_id} needs an epoch and a sequence >= 0, not "
            f"{header.producer_epoch} and {header.base_sequence}"
        )
    check_timestamps(
        (header.base_timestamp, header.max_timestamp), config, now_ms, timestamp_bounds
    )
    if codec != NONE:
        try:
            decompress(codec, frame_view[HEADER_SIZE:], MAX_DECOMPRESSED_BYTES)
        except DecompressionFailed as exc:
            raise CorruptBatch(f"the batch at byte {position}: {exc}") from None
    return CheckedBatch(bytearray(frame_view), header)


def frames_of(batches: Sequence[CheckedBatch]) -> list[bytearray]:
    return [batch.frame for batch in batches]
