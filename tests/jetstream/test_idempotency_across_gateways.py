"""An Idempotency-Key sent again through ANOTHER gateway stores nothing and gets the same offsets.

A client whose gateway died sends its request again through another one, which never saw the
key (each gateway's window is its own memory).  The records of each partition carry a dedup id
derived from the key, as ``Nats-Msg-Id`` of their atomic batch, so JetStream recognises the
repeat inside its duplicate window and the gateway answers with the original offsets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimq.client import Client
from tests.support.nats_cluster import NatsCluster
from tests.support.processes import BrokerProcess


@pytest.fixture
def two_gateways(
    tmp_path: Path, nats_cluster: NatsCluster
) -> Iterator[tuple[BrokerProcess, BrokerProcess]]:
    """Two broker processes over the session cluster, in one fresh namespace."""
    namespace = f"idem{uuid.uuid4().hex[:12]}"
    started: list[BrokerProcess] = []
    try:
        for index, urls in enumerate([nats_cluster.urls, list(reversed(nats_cluster.urls))]):
            data = tmp_path / f"gateway-{index}" / "data"
            data.mkdir(parents=True)
            process = BrokerProcess(
                data,
                ["--replicas", "3", "--log-level", "WARNING"],
                backend=",".join(urls),
                nats_namespace=namespace,
            )
            started.append(process)  # before start: a half-started one is stopped too
            process.start()
        yield started[0], started[1]
    finally:
        for process in started:
            process.stop()


def stored(url: str, topic: str, partitions: int) -> list[tuple[int, int, object]]:
    """Every (partition, offset, value) of ``topic``."""
    found: list[tuple[int, int, object]] = []
    with Client(url, timeout=30) as client:
        for partition in range(partitions):
            offset = 0
            while True:
                page = client.fetch(topic, partition, offset=offset, limit=1000)
                found.extend((partition, r.offset, r.value) for r in page.records)
                if page.next_offset >= page.high_watermark:
                    break
                offset = page.next_offset
    return found


@pytest.mark.parametrize(
    ("partitions", "count"),
    [(3, 10), (1, 2500)],  # spread over partitions; one call of three atomic batches
)
def test_a_key_sent_through_two_gateways_is_stored_once(
    two_gateways: tuple[BrokerProcess, BrokerProcess], partitions: int, count: int
) -> None:
    first, second = two_gateways
    topic = f"idem-{partitions}-{count}"
    records = [{"value": {"n": n}} for n in range(count)]
    with Client(first.url, timeout=60) as one, Client(second.url, timeout=60) as two:
        one.create_topic(topic, partitions=partitions)
        one.produce_batch(topic, [{"value": "before"}])  # the key's offsets are not 0
        original = one.produce_batch(topic, records, idempotency_key="retry-me")
        again = two.produce_batch(topic, records, idempotency_key="retry-me")
        and_back = one.produce_batch(topic, records, idempotency_key="retry-me")
    where = [(m.partition, m.offset) for m in original]
    assert [(m.partition, m.offset) for m in again] == where
    assert [(m.partition, m.offset) for m in and_back] == where
    values = [value for _, _, value in stored(second.url, topic, partitions)]
    assert len(values) == count + 1, f"{len(values) - count - 1} records stored twice"
    assert sorted(v["n"] for v in values if isinstance(v, dict)) == list(range(count))
