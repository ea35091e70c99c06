"""Two broker processes for failover tests: interchangeable gateways, as far as a client sees.

Each has its own data directory (the cluster backend is not needed to test a
client's failover mechanics), so a test that needs both to hold the same
history writes it to each (:func:`same_history`).  Both are stopped by PID
whatever happens to the test.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from minimq.client import Client, Record
from tests.support.processes import BrokerProcess


@contextmanager
def broker_pair(tmp_path: Path) -> Iterator[tuple[BrokerProcess, BrokerProcess]]:
    with ExitStack() as stack:
        pair = []
        for name in ("a", "b"):
            data = tmp_path / f"broker-{name}" / "data"
            data.mkdir(parents=True)
            broker = BrokerProcess(data)
            # Registered before starting: a broker that half-started is killed too.
            stack.callback(broker.kill)
            pair.append(broker.start())
        yield pair[0], pair[1]


def same_history(
    brokers: Sequence[BrokerProcess], topic: str, values: Sequence[Any], partitions: int = 1
) -> None:
    """Create ``topic`` on every broker and append ``values`` to each, round the partitions."""
    for broker in brokers:
        with Client(broker.url) as client:
            client.create_topic(topic, partitions=partitions)
            client.produce_batch(
                topic, [{"value": v, "partition": n % partitions} for n, v in enumerate(values)]
            )


def read_all(url: str, topic: str) -> list[Record]:
    """Every record of ``topic`` at the broker ``url``, partition by partition."""
    records: list[Record] = []
    with Client(url) as client:
        for partition in range(client.describe_topic(topic).partitions):
            offset = 0
            while True:
                page = client.fetch(topic, partition, offset=offset, limit=1000)
                records.extend(page.records)
                if page.next_offset >= page.high_watermark:
                    break
                offset = page.next_offset
    return records
