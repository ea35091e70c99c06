"""Per-partition produce outcomes and idempotent produce, on the in-memory storage fake."""

from __future__ import annotations

import asyncio

import pytest

from minimq.core import Broker, BrokerSettings, CommitOffset, ProduceRecord
from minimq.core.idempotency import ProduceWindow, WindowBounds, fingerprint
from minimq.core.topic_config import TopicConfig
from minimq.errors import (
    IdempotencyKeyReused,
    LogFailed,
    StorageFull,
    TopicNotFound,
)
from tests.support.memory_storage import MemoryStorage


def make_broker(**settings: object) -> tuple[Broker, MemoryStorage]:
    storage = MemoryStorage()
    return Broker(storage, BrokerSettings(**settings)), storage  # type: ignore[arg-type]


def to_partitions(*partitions: int) -> list[ProduceRecord]:
    return [ProduceRecord(f"r{i}".encode(), partition=p) for i, p in enumerate(partitions)]


def stored(storage: MemoryStorage, topic: str, partition: int) -> list[bytes | None]:
    return [r.value for r in storage.logs.partition(topic, partition).records]


# -- per-partition outcome (issue #17, defect 6) -------------------------------------


async def test_a_produce_that_stored_some_partitions_says_which() -> None:
    broker, storage = make_broker()
    await broker.create_topic("t", TopicConfig(partitions=3))
    storage.logs.partition("t", 1).failures.append(StorageFull("no space left on device"))
    with pytest.raises(StorageFull) as raised:
        await broker.produce("t", to_partitions(0, 1, 2, 1))
    assert raised.value.details == {
        "topic": "t",
        "offsets": [
            {"partition": 0, "offset": 0},
            {"partition": 1, "offset": None, "error": "STORAGE_FULL"},
            {"partition": 2, "offset": 0},
            {"partition": 1, "offset": None, "error": "STORAGE_FULL"},
        ],
    }
    assert "[0, 2] were stored" in raised.value.message
    assert stored(storage, "t", 0) == [b"r0"] and stored(storage, "t", 1) == []


async def test_a_produce_that_stored_nothing_is_the_plain_error() -> None:
    broker, storage = make_broker()
    await broker.create_topic("t", TopicConfig(partitions=2))
    for partition in (0, 1):
        storage.logs.partition("t", partition).failures.append(LogFailed("poisoned"))
    with pytest.raises(LogFailed) as raised:
        await broker.produce("t", to_partitions(0, 1))
    assert raised.value.details is None


async def test_a_retry_with_the_key_stores_only_the_partitions_that_failed() -> None:
    broker, storage = make_broker()
    await broker.create_topic("t", TopicConfig(partitions=2))
    # Unkeyed records spread round-robin: the retry must put each where the first did.
    records = [ProduceRecord(f"v{i}".encode()) for i in range(5)]
    await broker.produce("t", [ProduceRecord(b"moves the rotation")])
    storage.logs.partition("t", 0).failures.append(StorageFull("full"))
    with pytest.raises(StorageFull) as raised:
        await broker.produce("t", records, idempotency_key="k1")
    assert raised.value.details is not None
    first = raised.value.details["offsets"]
    await broker.produce("t", [ProduceRecord(b"moves it again")])
    again = await broker.produce("t", records, idempotency_key="k1")
    assert [p.partition for p in again] == [entry["partition"] for entry in first]
    for position, entry in zip(again, first, strict=True):
        if entry["offset"] is not None:
            assert position.offset == entry["offset"]
    everything = stored(storage, "t", 0) + stored(storage, "t", 1)
    assert sorted(v for v in everything if v and v.startswith(b"v")) == sorted(
        r.value for r in records
    ), "each record exactly once"
    # And once complete, the key answers from the window.
    assert list(await broker.produce("t", records, idempotency_key="k1")) == list(again)
    assert sorted(everything) == sorted(stored(storage, "t", 0) + stored(storage, "t", 1))


# -- idempotent produce -----------------------------------------------------------


async def test_the_same_key_is_answered_with_the_first_offsets() -> None:
    broker, storage = make_broker()
    records = to_partitions(0, 0)
    first = await broker.produce("t", records, idempotency_key="abc")
    second = await broker.produce("t", records, idempotency_key="abc")
    assert list(first) == list(second)
    assert stored(storage, "t", 0) == [b"r0", b"r1"]
    other = await broker.produce("t", records, idempotency_key="abd")
    assert [p.offset for p in other] == [2, 3]


async def test_the_same_key_with_other_records_is_refused() -> None:
    broker, storage = make_broker()
    await broker.produce("t", to_partitions(0), idempotency_key="abc")
    with pytest.raises(IdempotencyKeyReused):
        await broker.produce("t", [ProduceRecord(b"other")], idempotency_key="abc")
    assert stored(storage, "t", 0) == [b"r0"]
    # Keys are per topic: another topic may use the same one.
    await broker.produce("u", [ProduceRecord(b"other")], idempotency_key="abc")


async def test_an_attempt_that_stored_nothing_frees_its_key() -> None:
    broker, storage = make_broker()
    await broker.create_topic("t", TopicConfig())
    storage.logs.partition("t", 0).failures.append(StorageFull("full"))
    with pytest.raises(StorageFull):
        await broker.produce("t", to_partitions(0), idempotency_key="abc")
    positions = await broker.produce("t", [ProduceRecord(b"new")], idempotency_key="abc")
    assert [p.offset for p in positions] == [0]


async def test_a_retry_during_the_first_attempt_waits_for_its_outcome() -> None:
    broker, storage = make_broker()
    records = to_partitions(0, 0, 0)
    first, second = await asyncio.gather(
        broker.produce("t", records, idempotency_key="same"),
        broker.produce("t", records, idempotency_key="same"),
    )
    assert list(first) == list(second)
    assert len(stored(storage, "t", 0)) == 3


async def test_a_deleted_topic_forgets_its_keys() -> None:
    broker, storage = make_broker()
    await broker.produce("t", to_partitions(0), idempotency_key="abc")
    await broker.delete_topic("t")
    assert len(broker.produce_window) == 0
    positions = await broker.produce("t", to_partitions(0), idempotency_key="abc")
    assert [p.offset for p in positions] == [0]
    assert stored(storage, "t", 0) == [b"r0"]


def test_the_window_is_bounded_per_topic_in_all_and_in_time() -> None:
    now = [0.0]
    window = ProduceWindow(
        WindowBounds(window_ms=1000, keys_per_topic=2, max_keys=3), lambda: now[0]
    )
    digest = fingerprint(to_partitions(0))
    for key in ("a", "b", "c"):
        window.begin("t1", key, digest, 0, 1)
    assert window.find("t1", "a") is None, "the oldest key of a full topic goes"
    assert window.find("t1", "c") is not None
    window.begin("t2", "x", digest, 0, 1)
    window.begin("t2", "y", digest, 0, 1)
    assert len(window) == 3, "the broker-wide bound"
    assert window.find("t1", "b") is None, "the oldest key of all goes"
    now[0] = 1.5
    assert window.find("t2", "y") is None, "older than the window"
    assert window.expire() == 2
    assert len(window) == 0


async def test_a_key_still_appending_is_never_evicted() -> None:
    window = ProduceWindow(WindowBounds(keys_per_topic=1, max_keys=1))
    digest = fingerprint(to_partitions(0))
    busy = window.begin("t", "busy", digest, 0, 1)
    busy.in_flight = asyncio.get_running_loop().create_future()
    window.begin("t", "next", digest, 0, 1)
    assert window.find("t", "busy") is busy


def test_fingerprints_tell_every_field_apart() -> None:
    base = ProduceRecord(b"v", b"k", (("h", b"1"),), 0, 5)
    variants = [
        base._replace(value=b"w"),
        base._replace(key=None),
        base._replace(headers=()),
        base._replace(partition=None),
        base._replace(timestamp=6),
    ]
    digests = {fingerprint([base])} | {fingerprint([variant]) for variant in variants}
    assert len(digests) == 6
    assert fingerprint([base]) == fingerprint([ProduceRecord(b"v", b"k", (("h", b"1"),), 0, 5)])


# -- topic incarnations in the core (issue #17, defect 4) ------------------------------


async def test_a_recreated_topic_inherits_no_commit() -> None:
    broker, _ = make_broker()
    await broker.produce("t", [ProduceRecord(str(i).encode()) for i in range(400)])
    await broker.groups.commit("g", [CommitOffset("t", 0, 300)])
    await broker.delete_topic("t")
    await broker.produce("t", [ProduceRecord(str(i).encode()) for i in range(100)])
    consumed = await broker.groups.consume("t", "g")
    assert consumed is not None and consumed.record.offset == 0


async def test_a_commit_that_waited_through_a_delete_and_create_is_refused() -> None:
    broker, storage = make_broker()
    await broker.produce("t", [ProduceRecord(str(i).encode()) for i in range(400)])
    # The commit is checked against the old topic, then waits for the group lock.
    async with broker.groups._locks.hold("g"):
        waiting = asyncio.create_task(broker.groups.commit("g", [CommitOffset("t", 0, 300)]))
        await asyncio.sleep(0)
        await broker.delete_topic("t")
        await broker.produce("t", [ProduceRecord(b"new")] * 5)
    with pytest.raises(TopicNotFound):
        await waiting
    assert await storage.offsets.committed("g") == {}


def test_a_key_counts_once_per_partition_it_wrote_in_the_broker_wide_bound() -> None:
    window = ProduceWindow(WindowBounds(max_keys=4))
    digest = fingerprint(to_partitions(0))
    window.begin("t", "wide", digest, 0, 3)
    window.begin("t", "narrow", digest, 0, 1)
    assert window.weight == 4
    window.begin("t", "wide-2", digest, 0, 3)
    assert window.find("t", "wide") is None, "the oldest goes until the new key fits"
    assert window.find("t", "narrow") is not None
    assert window.weight == 4
