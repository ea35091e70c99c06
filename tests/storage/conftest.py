from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.storage import open_storage
from minimq.storage.engine import DiskStorage


def records(count: int, start: int = 0, size: int = 20) -> list[NewRecord]:
    """``count`` distinct records: key ``k<i>``, a ``size``-byte value, one header."""
    return [
        NewRecord(
            key=f"k{i}".encode(),
            value=f"{i:0{size}d}".encode(),
            headers=(("n", str(i).encode()),),
            timestamp=1_000 + i,
        )
        for i in range(start, start + count)
    ]


@pytest.fixture
async def storage(data_dir: Path) -> AsyncIterator[DiskStorage]:
    opened = await open_storage(data_dir)
    yield opened
    await opened.close()


SMALL_SEGMENTS = TopicConfig(partitions=1, segment_bytes=1024)
