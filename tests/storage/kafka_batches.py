"""Client-shaped RecordBatch v2 frames for tests, built as Kafka producers build them.

aiokafka's batch builder is the one its producer uses (compression included:
gzip from the standard library, xerial-framed snappy, lz4 and zstd frames
from cramjam); raw (unframed) snappy, which librdkafka writes, is built here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import cramjam
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from crc32c import crc32c

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
BASE_TIMESTAMP = 1_700_000_000_000


def client_batch(
    values: Sequence[bytes],
    *,
    codec: str = "none",
    producer_id: int = -1,
    epoch: int = -1,
    sequence: int = -1,
    timestamp: int = BASE_TIMESTAMP,
    key: bytes | None = b"key",
    headers: Sequence[tuple[str, bytes]] = (("h", b"v"),),
) -> bytes:
    """One batch of ``values`` (record i at offset delta i, timestamp ``timestamp + i``)."""
    builder = DefaultRecordBatchBuilder(2, CODECS[codec], 0, producer_id, epoch, sequence, 1 << 30)
    for delta, value in enumerate(values):
        builder.append(delta, timestamp + delta, key, value, list(headers))
    return bytes(builder.build())


def with_crc(frame: bytes | bytearray) -> bytes:
    """``frame`` with its CRC-32C recomputed (after a test changed a covered field)."""
    patched = bytearray(frame)
    struct.pack_into(">I", patched, 17, crc32c(bytes(patched[21:])))
    return bytes(patched)


def raw_snappy_batch(values: Sequence[bytes]) -> bytes:
    """A snappy batch as librdkafka writes it: raw snappy, no xerial framing."""
    plain = bytearray(client_batch(values))
    compressed = bytes(cramjam.snappy.compress_raw(bytes(plain[61:])))
    frame = bytearray(plain[:61]) + compressed
    struct.pack_into(">i", frame, 8, len(frame) - 12)
    struct.pack_into(">h", frame, 21, 2)
    return with_crc(frame)
