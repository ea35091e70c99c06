"""Recovery after unclean stops: torn tails, bit flips, lost indexes, leftovers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from minimq.core.records import Record
from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import CorruptLog
from minimq.recordbatch.frames import parse_header
from minimq.storage import open_storage
from minimq.storage.partition import DiskPartitionLog
from tests.storage.conftest import SMALL_SEGMENTS, records

CONFIG = SMALL_SEGMENTS


async def build_partition(
    data_dir: Path, batches: int = 30, per_batch: int = 3, config: TopicConfig = CONFIG
) -> Path:
    """A cleanly closed topic ``t`` with several segments; returns the partition directory."""
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", config)
    log = storage.logs.partition("t", 0)
    for number in range(batches):
        await log.append(records(per_batch, start=number * per_batch))
    await storage.close()
    return data_dir / "topics" / "t" / "0"


def open_partition(
    directory: Path, *, clean: bool, config: TopicConfig = CONFIG
) -> DiskPartitionLog:
    return DiskPartitionLog.open(directory, config, FsyncPolicy(), clean=clean)


async def read_all(log: DiskPartitionLog) -> list[Record]:
    return await log.read(log.start_offset, 1 << 20, 1 << 30)


def segment_files(directory: Path, suffix: str) -> list[Path]:
    return sorted(directory.glob(f"*{suffix}"))


def batch_positions(segment: Path) -> list[int]:
    data = segment.read_bytes()
    positions, position = [], 0
    while position < len(data):
        positions.append(position)
        position += parse_header(data, position).total_size
    return positions


async def test_torn_tail_cut_at_every_byte_is_truncated(data_dir: Path, tmp_path: Path) -> None:
    directory = await build_partition(data_dir, batches=8, per_batch=1)
    active = segment_files(directory, ".log")[-1]
    last_start = batch_positions(active)[-1]
    full_size = active.stat().st_size
    pristine = tmp_path / "pristine"
    shutil.copytree(directory, pristine)
    with_complete = open_partition(directory, clean=True)
    expected = (await read_all(with_complete))[:-1]
    last_base = expected[-1].offset + 1
    with_complete_end = with_complete.end_offset
    await with_complete.close()
    assert with_complete_end == last_base + 1

    for cut in range(last_start, full_size):
        shutil.rmtree(directory)
        shutil.copytree(pristine, directory)
        with (directory / active.name).open("r+b") as handle:
            handle.truncate(cut)
        log = open_partition(directory, clean=False)
        try:
            assert log.end_offset == last_base, cut
            assert await read_all(log) == expected, cut
            assert (directory / active.name).stat().st_size == last_start, cut
            assert await log.append(records(1)) == last_base
        finally:
            await log.close()


async def test_bit_flip_in_a_sealed_segment_is_never_served(data_dir: Path) -> None:
    directory = await build_partition(data_dir)
    sealed = segment_files(directory, ".log")[0]
    positions = batch_positions(sealed)
    damaged_at = positions[2]
    data = bytearray(sealed.read_bytes())
    data[damaged_at + 70] ^= 0x01  # inside the records of the third batch
    sealed.write_bytes(bytes(data))

    # A clean open trusts the sealed segment's index, but reads check every CRC.
    storage = await open_storage(data_dir)
    log = storage.logs.partition("t", 0)
    first_damaged = parse_header(data, damaged_at).base_offset
    assert [r.offset for r in await log.read(0, first_damaged, 1 << 20)] == list(
        range(first_damaged)
    )
    with pytest.raises(CorruptLog, match=rf"{sealed.name}.*byte {damaged_at}"):
        await log.read(first_damaged, 1, 1 << 20)
    with pytest.raises(CorruptLog):
        await log.read(0, 1000, 1 << 20)
    assert (await log.read(log.end_offset - 1, 1, 100))[0].offset == log.end_offset - 1
    await storage.close()

    # Once the index must be rebuilt, the whole segment is verified: refuse to open.
    (directory / sealed.name.replace(".log", ".index")).unlink()
    with pytest.raises(CorruptLog, match=rf"{sealed.name}.*byte {damaged_at}"):
        await open_storage(data_dir)


async def test_corrupt_batch_inside_the_active_segment_truncates_from_there(
    data_dir: Path,
) -> None:
    directory = await build_partition(data_dir)
    active = segment_files(directory, ".log")[-1]
    positions = batch_positions(active)
    assert len(positions) >= 3
    data = bytearray(active.read_bytes())
    data[positions[1] + 70] ^= 0x01
    active.write_bytes(bytes(data))
    (data_dir / ".clean-shutdown").unlink()
    storage = await open_storage(data_dir)
    log = storage.logs.partition("t", 0)
    assert log.end_offset == parse_header(data, positions[1]).base_offset
    assert active.stat().st_size == positions[1]
    await storage.close()


@pytest.mark.parametrize("damage", ["delete", "truncate", "garble", "empty"])
async def test_lost_or_corrupt_indexes_are_rebuilt_identically(data_dir: Path, damage: str) -> None:
    config = TopicConfig(segment_bytes=16 * 1024)
    directory = await build_partition(data_dir, batches=300, per_batch=2, config=config)
    before_files = {
        path.name: path.read_bytes()
        for suffix in (".index", ".timeindex")
        for path in segment_files(directory, suffix)
    }
    assert any(before_files.values()), "the test needs non-empty indexes"
    log = open_partition(directory, clean=True, config=config)
    assert log.segment_count > 1
    before = [await log.read(offset, 5, 1 << 20) for offset in range(log.end_offset)]
    stamps = [await log.offset_for_timestamp(1_000 + offset) for offset in range(log.end_offset)]
    await log.close()

    for path in segment_files(directory, ".index") + segment_files(directory, ".timeindex"):
        raw = path.read_bytes()
        if damage == "delete":
            path.unlink()
        elif damage == "truncate" and raw:
            path.write_bytes(raw[:-3])
        elif damage == "garble" and raw:
            path.write_bytes(raw[:4] + b"\xff\xff\xff\xff" + raw[8:])
        elif damage == "empty":
            path.write_bytes(b"")

    log = open_partition(directory, clean=True, config=config)
    try:
        assert [await log.read(offset, 5, 1 << 20) for offset in range(log.end_offset)] == before
        assert [await log.offset_for_timestamp(1_000 + o) for o in range(log.end_offset)] == stamps
    finally:
        await log.close()
    after_files = {
        path.name: path.read_bytes()
        for suffix in (".index", ".timeindex")
        for path in segment_files(directory, suffix)
    }
    if damage != "empty":  # an emptied index is consistent (just slower), so it is kept
        assert after_files == before_files


async def test_leftovers_are_cleaned_at_open(data_dir: Path) -> None:
    directory = await build_partition(data_dir, batches=3)
    (directory / "00000000000000000000.log.tmp").write_bytes(b"junk")
    (directory / "00000000000000099999.index").write_bytes(b"")
    (data_dir / "topics" / "half-created" / "0").mkdir(parents=True)
    (data_dir / "trash" / "gone-123").mkdir(parents=True)
    storage = await open_storage(data_dir)
    try:
        assert await storage.logs.topic_names() == ["t"]
        assert not (directory / "00000000000000000000.log.tmp").exists()
        assert not (directory / "00000000000000099999.index").exists()
        assert not (data_dir / "topics" / "half-created").exists()
        assert list((data_dir / "trash").iterdir()) == []
        assert storage.logs.partition("t", 0).end_offset == 9
    finally:
        await storage.close()


async def test_clean_restart_keeps_the_topic_config(data_dir: Path) -> None:
    storage = await open_storage(data_dir)
    config = TopicConfig(
        partitions=3,
        retention_ms=1000,
        retention_bytes=4096,
        segment_bytes=2048,
        segment_ms=60_000,
        fsync=FsyncPolicy.parse("interval:25"),
    )
    await storage.logs.create_topic("kept", config)
    await storage.close()
    storage = await open_storage(data_dir)
    try:
        assert await storage.logs.topic_config("kept") == config
        assert storage.logs.partition("kept", 2).fsync == FsyncPolicy.parse("interval:25")
    finally:
        await storage.close()
