"""The group Consumer against a real broker: split partitions, exactly once when nothing
fails, at-least-once across a crash, seek, background heartbeats."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from minimq.client import Client, Consumer, Record
from tests.support.processes import BrokerProcess

TOTAL = 2_000
SESSION_TIMEOUT_MS = 1_000


@pytest.fixture(scope="module")
def short_session_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker that gives a silent member's partitions away after one second."""
    data = tmp_path_factory.mktemp("short-session") / "data"
    data.mkdir()
    with BrokerProcess(data, ["--session-timeout-ms", str(SESSION_TIMEOUT_MS)]) as process:
        yield process


def heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "minimq-consumer-heartbeat"]


def values(records: list[Record]) -> list[object]:
    return [record.value for record in records]


def drain(consumer: Consumer, sink: list[Record], idle_polls: int = 3) -> None:
    """Poll until several consecutive polls come back empty, committing each batch."""
    empty = 0
    while empty < idle_polls:
        records = consumer.poll(timeout_ms=300)
        sink.extend(records)
        consumer.commit()
        empty = 0 if records else empty + 1


def test_two_consumers_split_partitions_and_read_everything_once(
    shared_broker: BrokerProcess,
) -> None:
    with Client(shared_broker.url) as client:
        client.create_topic("split", partitions=4)
        client.produce_batch("split", [{"value": n} for n in range(TOTAL)])
        first = Consumer(client, "splitters", "split", member_id="a")
        second = Consumer(client, "splitters", "split", member_id="b")
        got_first: list[Record] = []
        got_second: list[Record] = []
        threads = [
            threading.Thread(target=drain, args=(first, got_first)),
            threading.Thread(target=drain, args=(second, got_second)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(first.assignment + second.assignment) == [0, 1, 2, 3]
        assert first.assignment and second.assignment
        assert {r.partition for r in got_first}.isdisjoint({r.partition for r in got_second})
        counts = Counter(r.value for r in got_first + got_second)
        assert sorted(counts) == list(range(TOTAL))
        assert set(counts.values()) == {1}
        first.close()
        second.close()
        lag = client.describe_group("splitters").offsets
        assert sum(o.lag for o in lag) == 0


def test_uncommitted_records_are_redelivered(shared_broker: BrokerProcess) -> None:
    with Client(shared_broker.url) as client:
        client.produce_batch("redeliver", [{"value": n} for n in range(10)])
        # A crashed process sends no heartbeats: this one's first is due long after the test.
        crashed = Consumer(
            client,
            "careful",
            "redeliver",
            auto_commit_interval_ms=None,
            heartbeat_interval_ms=600_000,
        )
        assert [r.value for r in crashed.poll(max_records=4)] == [0, 1, 2, 3]
        crashed.commit()
        assert [r.value for r in crashed.poll(max_records=3)] == [4, 5, 6]
        # A crash: no commit, no leave; the member's session is simply abandoned.
        client.leave_group("careful", "redeliver", crashed.member_id)
        with Consumer(client, "careful", "redeliver") as successor:
            assert [r.value for r in successor.poll()] == [4, 5, 6, 7, 8, 9]


def test_iterator_auto_commit_and_seek(shared_broker: BrokerProcess) -> None:
    with Client(shared_broker.url) as client:
        client.produce_batch("iterated", [{"value": n} for n in range(5)])
        with Consumer(client, "iter", "iterated", auto_commit_interval_ms=0) as consumer:
            values = []
            for record in consumer:
                values.append(record.value)
                if len(values) == 5:
                    break
            assert values == [0, 1, 2, 3, 4]
            consumer.seek(0, 2)
            assert [r.value for r in consumer.poll()] == [2, 3, 4]
        committed = client.describe_group("iter").offsets
        assert [(o.committed_offset, o.lag) for o in committed] == [(5, 0)]


def test_processing_longer_than_the_session_timeout_keeps_the_partitions(
    short_session_broker: BrokerProcess,
) -> None:
    with Client(short_session_broker.url) as client:
        client.produce_batch("slow", [{"value": n} for n in range(10)])
        with Consumer(client, "patient", "slow", member_id="a", heartbeat_interval_ms=200) as slow:
            assert values(slow.poll(max_records=3)) == [0, 1, 2]
            time.sleep(2.5 * SESSION_TIMEOUT_MS / 1000)  # processing the batch, not polling
            # Still a member, so still the same generation: the commit is accepted.
            assert slow.commit() == {0: 3}
            # Range assignment gives the one partition to "a" over "b" while "a" is alive.
            with Consumer(
                client, "patient", "slow", member_id="b", heartbeat_interval_ms=200
            ) as latecomer:
                assert latecomer.assignment == []
                members = client.describe_group("patient").members
                assert {(m.member_id, tuple(m.partitions)) for m in members} == {
                    ("a", (0,)),
                    ("b", ()),
                }
                # The latecomer's join was a rebalance: "a" rejoins and reads on from
                # its commit, keeping its partition.
                assert values(slow.poll(max_records=3)) == [3, 4, 5]
                assert slow.assignment == [0]


def test_a_consumer_that_stops_polling_hands_over_and_rejoins_from_the_commit(
    short_session_broker: BrokerProcess,
) -> None:
    with Client(short_session_broker.url) as client:
        client.produce_batch("stuck", [{"value": n} for n in range(10)])
        stuck = Consumer(
            client,
            "impatient",
            "stuck",
            member_id="a",
            auto_commit_interval_ms=None,
            heartbeat_interval_ms=100,
            max_poll_interval_ms=500,
        )
        assert values(stuck.poll(max_records=4)) == [0, 1, 2, 3]
        stuck.commit()
        assert values(stuck.poll(max_records=2)) == [4, 5]  # then it hangs, never committing
        with Consumer(
            client,
            "impatient",
            "stuck",
            member_id="b",
            auto_commit_interval_ms=None,
            heartbeat_interval_ms=200,
        ) as other:
            taken: list[Record] = []
            deadline = time.monotonic() + 15
            while not taken and time.monotonic() < deadline:
                taken = other.poll(timeout_ms=200, max_records=3)
            # The uncommitted records go to the member that took over: at-least-once.
            assert values(taken) == [4, 5, 6]
            assert other.assignment == [0]
            other.commit()
            members = client.describe_group("impatient").members
            assert [m.member_id for m in members] == ["b"]
            assert stuck.assignment == []
        # Back from its stall, the consumer rejoins and reads on from the group's commit.
        assert values(stuck.poll(max_records=10)) == [7, 8, 9]
        assert stuck.assignment == [0]
        assert stuck.member_id == "a", "a lapsed member rejoins under its own id"
        stuck.close()
        committed = client.describe_group("impatient").offsets
        assert [(o.committed_offset, o.lag) for o in committed] == [(10, 0)]


def test_close_stops_the_heartbeat_thread_without_waiting_out_the_interval(
    shared_broker: BrokerProcess,
) -> None:
    before = heartbeat_threads()
    with Client(shared_broker.url) as client:
        client.produce("closing", {"value": 0})
        consumer = Consumer(client, "closers", "closing", heartbeat_interval_ms=600_000)
        assert len(heartbeat_threads()) == len(before) + 1
        started = time.monotonic()
        consumer.close()
        # Far below the interval: close() wakes the thread instead of waiting it out.
        assert time.monotonic() - started < 60
        assert heartbeat_threads() == before
        assert "closers" not in {summary.group for summary in client.list_groups()}
