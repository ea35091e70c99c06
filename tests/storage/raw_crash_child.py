"""A child process for kill -9 tests of client batches: compressed, idempotent, acknowledged.

Usage: ``python -m tests.storage.raw_crash_child DATA_DIR``.  It appends
batches of 5 records from producer id 4242 (codecs in turn) from four writers
at once and prints ``base_offset sequence`` for each one storage acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
from pathlib import Path

from minimq.core.topic_config import TopicConfig
from minimq.errors import TopicAlreadyExists
from minimq.storage import open_storage
from tests.storage.kafka_batches import client_batch

CODECS = ("gzip", "snappy", "lz4", "zstd", "none")


async def append_forever(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    with contextlib.suppress(TopicAlreadyExists):
        await storage.logs.create_topic("crash", TopicConfig(segment_bytes=16 * 1024))
    log = storage.logs.partition("crash", 0)
    sequences = itertools.count(0, 5)

    async def writer(number: int) -> None:
        for round_number in itertools.count():
            sequence = next(sequences)
            frame = client_batch(
                [f"{sequence}-{i}".encode() for i in range(5)],
                codec=CODECS[(number + round_number) % len(CODECS)],
                producer_id=4242,
                epoch=0,
                sequence=sequence,
            )
            base = await log.append_batches([bytearray(frame)])
            print(base, sequence, flush=True)

    await asyncio.gather(*(writer(number) for number in range(4)))


if __name__ == "__main__":
    asyncio.run(append_forever(Path(sys.argv[1])))
