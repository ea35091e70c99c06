"""MiniMQ segments decoded by an independent Kafka implementation (kafka-python)."""

from __future__ import annotations

import warnings
from pathlib import Path

from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.storage.engine import DiskStorage

with warnings.catch_warnings():
    # kafka-python's package import uses a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.record import MemoryRecords


async def test_kafka_python_reads_our_segments(storage: DiskStorage) -> None:
    await storage.logs.create_topic("compat", TopicConfig(segment_bytes=2048))
    log = storage.logs.partition("compat", 0)
    sent: list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
    for batch_number in range(20):
        batch = [
            NewRecord(
                key=None if i % 3 == 0 else f"key-{batch_number}-{i}".encode(),
                value=None if i % 5 == 4 else f"value {batch_number} {i}".encode() * (i + 1),
                headers=tuple((f"h{j}", f"{batch_number}.{j}".encode()) for j in range(i % 3)),
                timestamp=1_700_000_000_000 + batch_number * 10 + i,
            )
            for i in range(batch_number % 4 + 1)
        ]
        base = await log.append(batch)
        sent.extend(
            (base + i, r.timestamp or 0, r.key, r.value, list(r.headers))
            for i, r in enumerate(batch)
        )
    segments = sorted(Path(log.directory).glob("*.log"))
    assert len(segments) > 1

    decoded: list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
    for segment in segments:
        records = MemoryRecords(segment.read_bytes())
        while (batch := records.next_batch()) is not None:
            assert batch.validate_crc()
            decoded.extend(
                (r.offset, r.timestamp, r.key, r.value, [(k, bytes(v)) for k, v in r.headers])
                for r in batch
            )
    assert decoded == sent
