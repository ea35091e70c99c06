"""Bit flips in sealed segments are always detected, and corrupt bytes are never served."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from minimq.core.records import Record
from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import CorruptLog
from minimq.storage import open_storage
from minimq.storage.partition import DiskPartitionLog
from tests.reliability.conftest import scale
from tests.storage.conftest import records

CONFIG = TopicConfig(segment_bytes=2048)


async def build_sealed_segments(data_dir: Path) -> tuple[Path, list[Record]]:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("flips", CONFIG)
    log = storage.logs.partition("flips", 0)
    for number in range(60):
        await log.append(records(2, start=number * 2, size=30))
    written = await log.read(0, 1000, 1 << 20)
    await storage.close()
    return data_dir / "topics" / "flips" / "0", written


async def serve_every_offset(log: DiskPartitionLog, written: list[Record]) -> int:
    """Read each offset alone; return how many reads refused with CorruptLog.

    Fails the test if any read returns a record that differs from what was written.
    """
    refused = 0
    for offset in range(log.start_offset, log.end_offset):
        try:
            got = await log.read(offset, 1, 1 << 20)
        except CorruptLog:
            refused += 1
            continue
        assert got == [written[offset]], f"offset {offset} served corrupt data: {got}"
    return refused


async def test_every_bit_flip_in_a_sealed_segment_is_detected(
    data_dir: Path, tmp_path: Path
) -> None:
    directory, written = await build_sealed_segments(data_dir)
    sealed = sorted(directory.glob("*.log"))[:-1]
    assert len(sealed) >= 3
    pristine = tmp_path / "pristine"
    shutil.copytree(directory, pristine)
    rng = random.Random(11)
    detected_at_open = detected_on_read = 0
    for trial in range(scale(100, 1000)):
        shutil.rmtree(directory)
        shutil.copytree(pristine, directory)
        segment = rng.choice(sealed)
        data = bytearray(segment.read_bytes())
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(8)
        (directory / segment.name).write_bytes(bytes(data))
        lose_index = rng.random() < 0.3
        if lose_index:  # the index must be rebuilt, so the whole segment is verified at open
            (directory / segment.name.replace(".log", ".index")).unlink()
        try:
            log = DiskPartitionLog.open(directory, CONFIG, FsyncPolicy(), clean=True)
        except CorruptLog as exc:
            assert segment.name in str(exc), exc
            detected_at_open += 1
            continue
        assert not lose_index, (
            f"trial {trial}: flip at {segment.name}:{position} not caught at open"
        )
        try:
            refused = await serve_every_offset(log, written)
        finally:
            log.close_files()
        assert refused > 0, f"trial {trial}: flip at {segment.name}:{position} never detected"
        detected_on_read += 1
    print(f"bit flips detected: {detected_at_open} at open, {detected_on_read} on read")
