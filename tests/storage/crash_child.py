"""A child process for kill -9 tests: appends or commits, printing every acknowledgement.

Usage: ``python -m tests.storage.crash_child DATA_DIR append|commit``.  Each
line printed is something storage acknowledged; the parent SIGKILLs the
process at a random moment and checks that all of it survived.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.errors import TopicAlreadyExists
from minimq.storage import open_storage

WRITERS = 4


async def append_forever(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    with contextlib.suppress(TopicAlreadyExists):
        await storage.logs.create_topic("crash", TopicConfig(segment_bytes=64 * 1024))
    log = storage.logs.partition("crash", 0)

    async def writer(number: int) -> None:
        sequence = 0
        while True:
            values = [f"{number}-{sequence}-{i}".encode() for i in range(3)]
            base = await log.append([NewRecord(None, value) for value in values])
            print(base, *(value.decode() for value in values), flush=True)
            sequence += 1

    await asyncio.gather(*(writer(number) for number in range(WRITERS)))


async def commit_forever(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    # Commits are for an existing topic (they are keyed by its topic id).
    with contextlib.suppress(TopicAlreadyExists):
        await storage.logs.create_topic("crash", TopicConfig(partitions=2))
    offset = 0
    while True:
        offset += 1
        await storage.offsets.commit("crash-group", [("crash", 0, offset), ("crash", 1, offset)])
        print(offset, flush=True)


def main() -> None:
    data_dir, mode = Path(sys.argv[1]), sys.argv[2]
    asyncio.run(append_forever(data_dir) if mode == "append" else commit_forever(data_dir))


if __name__ == "__main__":
    main()
