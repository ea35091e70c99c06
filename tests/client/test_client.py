"""The sync client against a real broker: every endpoint, typed errors, safe retries."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimq.client import Client, Record, RecordMetadata
from minimq.errors import (
    BrokerUnavailable,
    GroupHasMembers,
    GroupNotFound,
    InvalidRequest,
    InvalidTopicName,
    OffsetOutOfRange,
    TopicAlreadyExists,
    TopicNotFound,
    Unauthorized,
)
from tests.support.processes import BrokerProcess, free_port


@pytest.fixture
def client(shared_broker: BrokerProcess) -> Iterator[Client]:
    with Client(shared_broker.url) as c:
        yield c


def test_health(client: Client) -> None:
    assert client.health()["status"] == "ok"


def test_topic_lifecycle(client: Client) -> None:
    created = client.create_topic("lifecycle", partitions=3, retention_ms=3_600_000)
    assert (created.name, created.partitions) == ("lifecycle", 3)
    assert created.config["retention_ms"] == 3_600_000
    assert [p.partition for p in created.partition_info] == [0, 1, 2]
    assert "lifecycle" in [t.name for t in client.list_topics()]
    with pytest.raises(TopicAlreadyExists):
        client.create_topic("lifecycle")
    client.produce("lifecycle", "x", partition=1)
    described = client.describe_topic("lifecycle")
    assert described.messages == 1
    assert described.partition_info[1].end_offset == 1
    client.delete_topic("lifecycle")
    with pytest.raises(TopicNotFound) as info:
        client.describe_topic("lifecycle")
    assert info.value.code == "TOPIC_NOT_FOUND"


def test_produce_and_fetch_round_trip_values_keys_headers(client: Client) -> None:
    client.create_topic("roundtrip", partitions=2)
    values = [{"n": 1, "nested": [1.5, None, "s"]}, "text", 42, None, [True, False]]
    stored = client.produce_batch(
        "roundtrip",
        [{"value": v, "key": "k", "headers": {"h": str(i)}} for i, v in enumerate(values)],
    )
    assert {m.partition for m in stored} == {stored[0].partition}  # one key, one partition
    assert [m.offset for m in stored] == list(range(5))
    one = client.produce("roundtrip", {"single": True}, partition=1, timestamp=1_700_000_000_000)
    assert one == RecordMetadata("roundtrip", 1, one.offset)

    page = client.fetch("roundtrip", stored[0].partition, offset=0, limit=3)
    assert [r.value for r in page.records] == values[:3]
    assert page.records[0].key == "k"
    assert page.records[2].headers == {"h": "2"}
    assert page.next_offset == 3
    rest = client.fetch("roundtrip", stored[0].partition, offset=page.next_offset)
    assert [r.value for r in rest.records] == values[3:]
    assert rest.high_watermark == 5

    by_time = client.fetch("roundtrip", 1, timestamp=1_700_000_000_000)
    assert by_time.records[-1].value == {"single": True}
    assert by_time.records[-1].timestamp == 1_700_000_000_000


def test_fetch_latest_and_long_poll(client: Client) -> None:
    client.create_topic("longpoll")
    client.produce("longpoll", "old")
    latest = client.fetch("longpoll", offset="latest")
    assert latest.records == [] and latest.next_offset == 1

    timer = threading.Timer(0.3, client.produce, args=("longpoll", "new"))
    timer.start()
    try:
        page = client.fetch("longpoll", offset=1, wait_ms=10_000)
    finally:
        timer.join()
    assert [r.value for r in page.records] == ["new"]


def test_fetch_errors_are_typed(client: Client) -> None:
    client.create_topic("errors")
    with pytest.raises(OffsetOutOfRange):
        client.fetch("errors", offset=5)
    with pytest.raises(TopicNotFound):
        client.fetch("no-such-topic")
    with pytest.raises(InvalidTopicName):
        client.create_topic("bad/name")
    with pytest.raises(InvalidRequest):
        client.produce_batch("errors", [{"key": "no value"}])


def test_group_endpoints(client: Client) -> None:
    client.create_topic("grouped", partitions=2)
    client.produce_batch("grouped", [{"value": i, "partition": i % 2} for i in range(6)])

    joined = client.heartbeat("readers", "grouped", "m1")
    assert (joined.member_id, joined.assignment) == ("m1", [0, 1])
    fetched = client.group_fetch("readers", "grouped", member_id="m1", limit=100)
    assert fetched.assignment == [0, 1]
    assert sorted(r.value for r in fetched.records) == list(range(6))
    assert fetched.positions == {0: 3, 1: 3}
    again = client.group_fetch("readers", "grouped", member_id="m1")
    assert again.records == []  # the member's position advanced

    assert fetched.generation == joined.generation
    client.commit(
        "readers",
        [("grouped", 0, 3), ("grouped", 1, 2)],
        member_id="m1",
        generation=fetched.generation,
    )
    info = client.describe_group("readers")
    assert {(o.partition, o.committed_offset, o.lag) for o in info.offsets} == {
        (0, 3, 0),
        (1, 2, 1),
    }
    assert [(m.member_id, m.partitions) for m in info.members] == [("m1", [0, 1])]
    summary = [g for g in client.list_groups() if g.group == "readers"]
    assert summary[0].topics == ["grouped"] and summary[0].members == 1

    reset = client.reset_group("readers", "grouped", to="offset", offset=1, partition=0)
    assert {(o.partition, o.committed_offset) for o in reset.offsets} == {(0, 1), (1, 2)}
    replay = client.group_fetch("readers", "grouped", member_id="m1", commit=True)
    # Partition 0 restarts at the reset offset; partition 1 keeps the member's position.
    assert sorted((r.partition, r.offset) for r in replay.records) == [(0, 1), (0, 2)]

    client.leave_group("readers", "grouped", "m1")
    assert client.describe_group("readers").members == []
    client.delete_group("readers")
    with pytest.raises(GroupNotFound):
        client.describe_group("readers")


def test_group_fetch_without_member_id_is_a_read_without_membership(client: Client) -> None:
    client.create_topic("anonymous")
    result = client.group_fetch("anon-group", "anonymous")
    assert (result.member_id, result.generation, result.assignment) == (None, None, [0])
    joined = client.join_group("anon-group", "anonymous")
    assert joined.member_id and joined.assignment == [0]
    with pytest.raises(GroupHasMembers):
        client.group_fetch("anon-group", "anonymous")


def test_stream_yields_new_records_and_ends_after_timeout(client: Client) -> None:
    client.create_topic("live", partitions=2)
    client.produce("live", "before", partition=0)
    received: list[Record] = []

    def produce_later() -> None:
        time.sleep(0.5)
        client.produce_batch("live", [{"value": i, "partition": i % 2} for i in range(4)])

    writer = threading.Thread(target=produce_later)
    writer.start()
    started = time.monotonic()
    with contextlib.closing(client.stream("live", timeout=3)) as records:
        received.extend(itertools.islice(records, 4))
    writer.join()
    assert sorted(r.value for r in received) == [0, 1, 2, 3]
    assert time.monotonic() - started < 10

    replay = list(client.stream("live", start="earliest", partition=0, timeout=1))
    assert [r.value for r in replay] == ["before", 0, 2]


def test_stream_carries_records_larger_than_a_read_buffer(client: Client) -> None:
    big = "x" * 300_000
    client.produce("big", big)
    assert [r.value for r in client.stream("big", start="earliest", timeout=1)] == [big]


def test_unreachable_broker_raises_broker_unavailable() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", retries=1) as c,
        pytest.raises(BrokerUnavailable) as info,
    ):
        c.list_topics()
    assert info.value.code == "BROKER_UNAVAILABLE"


def test_connect_refused_is_retried_until_the_broker_is_up(data_dir: Path) -> None:
    broker = BrokerProcess(data_dir)
    starter = threading.Timer(0.2, broker.start)
    starter.start()
    try:
        with Client(broker.url, retries=12) as c:
            # Retried with backoff: 0.1 * 2**n capped at 2 s covers the start-up.
            assert c.produce("late", "hello").offset == 0
    finally:
        starter.join()
        broker.stop()


def test_token_is_sent_and_required(tmp_path: Path) -> None:
    data = tmp_path / "secured"
    data.mkdir()
    with BrokerProcess(data, ["--token", "s3cret"]) as broker:
        with Client(broker.url) as anonymous:
            assert anonymous.health()["status"] == "ok"
            with pytest.raises(Unauthorized):
                anonymous.list_topics()
        with Client(broker.url, token="s3cret") as authorized:
            authorized.create_topic("secret")
            assert [t.name for t in authorized.list_topics()] == ["secret"]
