"""The group Consumer against a real broker: split partitions, exactly once when nothing
fails, at-least-once across a crash, seek."""

from __future__ import annotations

import threading
from collections import Counter

from minimq.client import Client, Consumer, Record
from tests.support.processes import BrokerProcess

TOTAL = 2_000


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
        crashed = Consumer(client, "careful", "redeliver", auto_commit_interval_ms=None)
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
