"""The simulator given two broker URLs: when the one in use is killed, readings go on to the other.

Two real brokers (their own data directories) stand in for two gateways. No
reading taken is lost: every one the simulator took is stored on one broker
or the other, each sequence number of the producer at least once, and only
the batch in flight at the kill may be on both.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimq.client import Client, Producer
from tests.producer.test_simulator import (
    Simulator,
    readings,
    seqs_by_producer,
    start,
    wait_until,
)
from tests.support.broker_pair import broker_pair, read_all
from tests.support.processes import BrokerProcess

Pair = tuple[BrokerProcess, BrokerProcess]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with broker_pair(tmp_path) as brokers:
        yield brokers


@pytest.fixture
def simulators() -> Iterator[list[Simulator]]:
    started: list[Simulator] = []
    yield started
    for simulator in started:
        if simulator.process.poll() is None:
            simulator.process.kill()
            simulator.process.wait()


def test_simulator_fails_over_to_the_second_broker_url(
    pair: Pair, tmp_path: Path, simulators: list[Simulator]
) -> None:
    a, b = pair
    simulator = start(
        simulators,
        tmp_path,
        ["minimq", "producer"],
        BROKER_URL=f"{a.url},{b.url}",
        TOPIC="readings",
        INTERVAL_SECONDS="0.02",
        PRODUCER_ID="edge",
    )
    with Client(a.url) as on_a:
        wait_until(lambda: len(readings(on_a, ["readings"])) >= 50, timeout=60)
    a.kill()
    with Client(b.url) as on_b:
        wait_until(lambda: len(readings(on_b, ["readings"])) >= 50, timeout=60)
    simulator.stop(signal.SIGTERM)
    taken, delivered = simulator.taken_and_delivered()
    assert taken == delivered
    a.start()
    stored = read_all(a.url, "readings") + read_all(b.url, "readings")
    seqs = seqs_by_producer(stored)["edge"]
    assert seqs == set(range(1, taken + 1)), "a reading taken is missing"
    copies = Counter(r.value["seq"] for r in stored)
    # At most the one batch in flight at the kill (a handful of readings) is on both.
    assert sum(count - 1 for count in copies.values()) <= 20


def test_producer_with_two_urls_resolves_every_future_through_the_kill(pair: Pair) -> None:
    a, b = pair
    for broker in (a, b):
        with Client(broker.url) as direct:
            direct.create_topic("batched")
    with Producer([a.url, b.url], linger_ms=2, max_batch_records=20) as producer:
        first = [producer.send("batched", {"n": n}) for n in range(200)]
        assert producer.flush(60)
        a.kill()
        second = [producer.send("batched", {"n": n}) for n in range(200, 400)]
        assert producer.flush(60)
    futures = first + second
    assert all(f.exception() is None for f in futures)
    a.start()
    on_a, on_b = read_all(a.url, "batched"), read_all(b.url, "batched")
    assert sorted(r.value["n"] for r in on_a) == list(range(200))
    assert sorted(r.value["n"] for r in on_b) == list(range(200, 400))
    assert [f.result().offset for f in second] == list(range(200))
