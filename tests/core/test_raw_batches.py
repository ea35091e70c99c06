"""Kafka produce and fetch on the core: checks, idempotent producers, waits, offsets."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from minimq.core import Broker, BrokerSettings
from minimq.core.batch_errors import (
    CorruptBatch,
    InvalidProducerEpoch,
    InvalidRecordBatch,
    OutOfOrderSequence,
    TransactionsUnsupported,
    UnsupportedCompression,
)
from minimq.core.models import FetchLimits, StartPosition
from minimq.core.topic_config import TopicConfig
from minimq.errors import InvalidTimestamp, MessageTooLarge, MiniMQError, TopicNotFound
from minimq.storage import open_storage
from tests.storage.kafka_batches import BASE_TIMESTAMP, client_batch, with_crc

NOW = BASE_TIMESTAMP + 1_000


async def open_broker(data_dir: Path) -> Broker:
    return Broker(await open_storage(data_dir), BrokerSettings(), clock_ms=lambda: NOW)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    opened = await open_broker(tmp_path / "data")
    await opened.create_topic("t", TopicConfig())
    yield opened
    await opened.close()


def values(count: int, start: int = 0) -> list[bytes]:
    return [f"v{i}".encode() for i in range(start, start + count)]


def idempotent(sequence: int, count: int = 3, *, epoch: int = 0, pid: int = 7) -> bytes:
    return client_batch(
        values(count, sequence), codec="lz4", producer_id=pid, epoch=epoch, sequence=sequence
    )


def patched(frame: bytes, offset: int, fmt: str, value: int, *, fix_crc: bool = True) -> bytes:
    changed = bytearray(frame)
    struct.pack_into(fmt, changed, offset, value)
    return with_crc(changed) if fix_crc else bytes(changed)


GOOD = client_batch(values(3))
REFUSALS = {
    "empty": (b"", CorruptBatch),
    "truncated header": (GOOD[:40], CorruptBatch),
    "truncated batch": (GOOD[:-1], CorruptBatch),
    "bytes left over": (GOOD + GOOD[:30], CorruptBatch),
    "crc mismatch": (GOOD[:-1] + bytes([GOOD[-1] ^ 1]), CorruptBatch),
    "magic 1": (patched(GOOD, 16, ">b", 1, fix_crc=False), InvalidRecordBatch),
    "codec 5": (patched(GOOD, 21, ">h", 5), UnsupportedCompression),
    "control batch": (patched(GOOD, 21, ">h", 0x20), InvalidRecordBatch),
    "transactional": (patched(GOOD, 21, ">h", 0x10), TransactionsUnsupported),
    "count mismatch": (patched(GOOD, 57, ">i", 2), InvalidRecordBatch),
    "no records": (patched(patched(GOOD, 57, ">i", 0), 23, ">i", -1), InvalidRecordBatch),
    "pid without sequence": (patched(GOOD, 43, ">q", 9), InvalidRecordBatch),
    "timestamp an hour ahead": (
        client_batch(values(2), timestamp=NOW + 3_600_001),
        InvalidTimestamp,
    ),
    "too large": (client_batch([b"x" * (1024 * 1024)]), MessageTooLarge),
    "corrupt zstd": (
        with_crc(client_batch(values(50), codec="zstd")[:-8] + b"\x00" * 8),
        CorruptBatch,
    ),
    "zstd bomb": (
        client_batch([bytes(1024 * 1024 - 200)] * 20, codec="zstd"),
        CorruptBatch,
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_a_bad_batch_is_refused_and_nothing_is_stored(broker: Broker, case: str) -> None:
    frame, error = REFUSALS[case]
    with pytest.raises(error):
        await broker.produce_raw("t", 0, frame)
    assert await broker.latest_offset("t", 0) == 0


async def test_a_good_batch_after_a_refused_one_in_the_same_entry_stores_nothing(
    broker: Broker,
) -> None:
    with pytest.raises(CorruptBatch):
        await broker.produce_raw("t", 0, GOOD + GOOD[:-1] + b"\x00")
    assert await broker.latest_offset("t", 0) == 0


async def test_kafka_records_reach_http_readers_and_wake_their_long_polls(broker: Broker) -> None:
    fetch = asyncio.create_task(
        broker.fetch("t", 0, StartPosition.at_offset(0), FetchLimits(wait_ms=60_000))
    )
    waited = asyncio.create_task(broker.wait_for_records({("t", 0): 0}, 60))
    await asyncio.sleep(0)
    result = await broker.produce_raw("t", 0, client_batch(values(3), codec="gzip"))
    assert result.base_offset == 0 and not result.duplicate
    await asyncio.wait_for(waited, 30)
    fetched = await asyncio.wait_for(fetch, 30)
    assert [r.value for r in fetched.records] == values(3)


async def test_wait_for_records_times_out_and_returns_at_once_with_data(broker: Broker) -> None:
    await broker.wait_for_records({("t", 0): 0}, 0.01)  # nothing: after the timeout
    await broker.produce_raw("t", 0, GOOD)
    await asyncio.wait_for(broker.wait_for_records({("t", 0): 2}, 60), 30)
    await asyncio.wait_for(broker.wait_for_records({("gone", 0): 0}, 60), 30)


async def test_fetch_raw_serves_stored_frames(broker: Broker) -> None:
    await broker.produce_raw("t", 0, GOOD + GOOD)
    result = await broker.fetch_raw("t", 0, 4, 1)
    frame = b"".join(result.batches)
    assert frame[16:] == GOOD[16:] and int.from_bytes(frame[:8], "big") == 3
    assert frame[12:16] == b"\x00\x00\x00\x00"  # partitionLeaderEpoch: a client's batch
    assert (result.high_watermark, result.log_start_offset) == (6, 0)
    assert (await broker.fetch_raw("t", 0, 6, 1 << 20)).batches == []
    with pytest.raises(TopicNotFound):
        await broker.fetch_raw("nope", 0, 0, 1)


async def test_offsets_for_list_offsets(broker: Broker) -> None:
    await broker.produce_raw("t", 0, client_batch(values(4), codec="snappy"))
    assert (await broker.earliest_offset("t", 0), await broker.latest_offset("t", 0)) == (0, 4)
    found = await broker.offset_for_timestamp("t", 0, BASE_TIMESTAMP + 2)
    assert found is not None and (found.offset, found.timestamp) == (2, BASE_TIMESTAMP + 2)
    assert await broker.offset_for_timestamp("t", 0, NOW) is None


async def test_ensure_topic_creates_once(broker: Broker) -> None:
    infos = await asyncio.gather(*(broker.ensure_topic("auto") for _ in range(3)))
    assert {info.name for info in infos} == {"auto"}
    assert (await broker.ensure_topic("t")).name == "t"


async def test_a_retried_batch_is_answered_with_its_offset_and_stored_once(broker: Broker) -> None:
    assert (await broker.produce_raw("t", 0, idempotent(0))).base_offset == 0
    assert (await broker.produce_raw("t", 0, idempotent(3))).base_offset == 3
    retry = await broker.produce_raw("t", 0, idempotent(0))
    assert (retry.base_offset, retry.duplicate) == (0, True)
    assert await broker.latest_offset("t", 0) == 6


async def test_sequence_gaps_and_old_epochs_are_refused(broker: Broker) -> None:
    await broker.produce_raw("t", 0, idempotent(0))
    with pytest.raises(OutOfOrderSequence):
        await broker.produce_raw("t", 0, idempotent(4))
    await broker.produce_raw("t", 0, idempotent(0, epoch=1))  # a new epoch starts at 0
    with pytest.raises(InvalidProducerEpoch):
        await broker.produce_raw("t", 0, idempotent(3, epoch=0))
    with pytest.raises(OutOfOrderSequence):
        await broker.produce_raw("t", 0, idempotent(5, epoch=2))
    # A producer this partition has no state for is taken at its word.
    assert (await broker.produce_raw("t", 0, idempotent(50, pid=8))).base_offset == 6
    assert await broker.latest_offset("t", 0) == 9


async def test_concurrent_copies_of_one_batch_store_it_once(broker: Broker) -> None:
    await broker.produce_raw("t", 0, GOOD)
    results = await asyncio.gather(*(broker.produce_raw("t", 0, idempotent(0)) for _ in range(5)))
    assert {r.base_offset for r in results} == {3}
    assert sum(not r.duplicate for r in results) == 1
    assert await broker.latest_offset("t", 0) == 6


async def test_a_retry_after_a_restart_is_still_deduplicated(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = await open_broker(data_dir)
    await first.create_topic("t", TopicConfig())
    pid, epoch = await first.init_producer_id()
    await first.produce_raw("t", 0, idempotent(0, pid=pid, epoch=epoch))
    await first.produce_raw("t", 0, idempotent(3, pid=pid, epoch=epoch))
    await first.close()
    second = await open_broker(data_dir)
    try:
        retry = await second.produce_raw("t", 0, idempotent(3, pid=pid))
        assert (retry.base_offset, retry.duplicate) == (3, True)
        with pytest.raises(OutOfOrderSequence):
            await second.produce_raw("t", 0, idempotent(9, pid=pid))
        assert (await second.produce_raw("t", 0, idempotent(6, pid=pid))).base_offset == 6
        again, _ = await second.init_producer_id()
        assert again != pid
    finally:
        await second.close()


async def test_producer_ids_never_repeat_across_restarts(tmp_path: Path) -> None:
    seen: set[int] = set()
    for _ in range(3):
        broker = await open_broker(tmp_path / "data")
        ids = [(await broker.init_producer_id())[0] for _ in range(5)]
        await broker.close()
        assert not seen & set(ids) and len(set(ids)) == 5
        seen |= set(ids)


def test_every_refusal_is_a_minimq_error() -> None:
    assert all(issubclass(error, MiniMQError) for _, error in REFUSALS.values())
