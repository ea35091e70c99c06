"""Records whose bytes are not all JSON, written straight into a data directory.

The HTTP API only takes JSON values and text keys and headers; Kafka
producers send any bytes. :func:`write_mixed_topic` puts both kinds into a
topic through the storage engine, before a broker is started on the data
directory, so tests can check how the HTTP API writes them (the value rule).
They are stored as the Kafka listener stores a producer's batch: a
RecordBatch built as a Kafka client builds it, appended verbatim by the raw
append, so the batch is marked as a client's and its values are checked
when read (a batch from ``append`` holds values the HTTP API checked, and is
trusted).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NamedTuple

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from minimq.core.topic_config import TopicConfig
from minimq.storage import open_storage

TOPIC = "mixed"


class Stored(NamedTuple):
    """One record as written: what the HTTP API must give back for it."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value_is_json: bool


STORED: tuple[Stored, ...] = (
    Stored(b"k0", b'{"a":1,"b":[true,null]}', (("h", b"text"),), True),
    Stored(None, b"plain text, not JSON", (), False),
    Stored(
        b"\xff\xfe binary key", b"\x00\x01\x02\xff", (("bin", b"\xc3\x28"), ("ok", b"v")), False
    ),
    # Pasted verbatim this would add fields to the record (and break its JSON).
    Stored(None, b'1,"offset":999,"injected":true', (), False),
    Stored(None, None, (), False),  # a Kafka tombstone
    Stored(None, b"", (), False),
    Stored(None, b'{"a":1,"a":2}', (), False),  # duplicate key
    Stored(None, b"NaN", (), False),
    Stored(None, b'{\n  "pretty": [1,\n 2.5e0]\r\n}\n', (), True),  # JSON over lines
    Stored(None, b'"caf\xc3\xa9"', (), True),
    Stored(None, b'"\xff"', (), False),  # invalid UTF-8 inside a string
    Stored(None, b"[" * 62 + b"]" * 62, (), False),  # deeper than a produce request allows
)


def client_batch(records: tuple[Stored, ...]) -> bytearray:
    """One uncompressed RecordBatch v2 of ``records``, as a Kafka producer builds it."""
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 30)
    for delta, record in enumerate(records):
        builder.append(
            delta, 1_700_000_000_000 + delta, record.key, record.value, list(record.headers)
        )
    frame: bytearray = builder.build()
    return frame


def write_mixed_topic(data_dir: Path) -> None:
    """Create :data:`TOPIC` (one partition) in ``data_dir`` holding :data:`STORED` in order."""

    async def write() -> None:
        storage = await open_storage(data_dir)
        try:
            await storage.logs.create_topic(TOPIC, TopicConfig(partitions=1))
            await storage.logs.partition(TOPIC, 0).append_batches([client_batch(STORED)])
        finally:
            await storage.close()

    asyncio.run(write())
