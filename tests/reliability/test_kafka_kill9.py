"""kill -9 of the broker under a confluent-kafka ``acks=all`` load: nothing acknowledged lost.

A librdkafka producer (``acks=all``, batching, retries) writes numbered
records to a 3-partition topic over the Kafka port while the broker is
killed with SIGKILL a few times and started again on the same ports and data.
Every record whose delivery report said success (it names the partition and
offset) must be there afterwards with its value. Records whose delivery
failed, or that were retried after a kill, may be missing or stored twice
(the producer is not idempotent here); both are counted and printed.

Reduced in the normal suite (20,000 records, 2 kills); 100,000 records and 5
kills with ``MINIMQ_FULL_RELIABILITY=1``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import scale
from tests.support.processes import BrokerProcess

confluent_kafka = pytest.importorskip(
    "confluent_kafka", reason="NOT RUN: confluent-kafka is not installed"
)

TOPIC = "kill9"
PARTITIONS = 3
LOAD_DEADLINE_S = 240.0
IN_FLIGHT = 5000


class DeliveryLedger:
    """What the broker acknowledged, from librdkafka's delivery reports."""

    def __init__(self) -> None:
        self.acknowledged: dict[tuple[int, int], bytes] = {}
        self.failed = 0
        self._lock = threading.Lock()

    def report(self, err: Any, message: Any) -> None:
        with self._lock:
            if err is not None:
                self.failed += 1
            else:
                self.acknowledged[(message.partition(), message.offset())] = message.value()

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)


def _read_back(bootstrap: str) -> dict[tuple[int, int], bytes]:
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "kill9-check", "enable.auto.commit": False}
    )
    try:
        ends = {}
        for p in range(PARTITIONS):
            _, ends[p] = consumer.get_watermark_offsets(
                confluent_kafka.TopicPartition(TOPIC, p), timeout=30
            )
        consumer.assign(
            [
                confluent_kafka.TopicPartition(TOPIC, p, confluent_kafka.OFFSET_BEGINNING)
                for p in range(PARTITIONS)
            ]
        )
        stored: dict[tuple[int, int], bytes] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(end == 0 or (p, end - 1) in stored for p, end in ends.items()):
                break
            for m in consumer.consume(10000, timeout=0.5):
                if m.error() is None:
                    stored[(m.partition(), m.offset())] = m.value()
        return stored
    finally:
        consumer.close()


def test_kill_9_under_acks_all_load_loses_no_acknowledged_record(data_dir: Path) -> None:
    total = scale(20_000, 100_000)
    kills = scale(2, 5)
    broker = BrokerProcess(data_dir, ["--fsync", "always"], kafka=True).start(timeout=60)
    ledger = DeliveryLedger()
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": broker.kafka_bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": 262144,
            "message.timeout.ms": 120000,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "topic.metadata.refresh.interval.ms": 1000,
            # The refused connections while the broker is down are expected: no log lines.
            "log_level": 2,
        }
    )
    try:
        created = httpx.post(
            f"{broker.url}/v1/topics", json={"name": TOPIC, "partitions": PARTITIONS}, timeout=30
        )
        assert created.status_code == 201, created.text
        kill_at = [total * (k + 1) // (kills + 2) for k in range(kills)]
        deadline = time.monotonic() + LOAD_DEADLINE_S
        sent = 0
        while time.monotonic() < deadline and (sent < total or kill_at):
            if kill_at and ledger.count() >= kill_at[0]:
                kill_at.pop(0)
                broker.kill()
                broker.start(timeout=60)
            # A bounded window in flight, so the kills land in the middle of the load.
            if sent < total and sent - ledger.count() - ledger.failed < IN_FLIGHT:
                try:
                    producer.produce(TOPIC, value=b"%d" % sent, on_delivery=ledger.report)
                    sent += 1
                except BufferError:
                    producer.poll(0.05)
                if sent % 500 == 0:
                    producer.poll(0)
            else:
                producer.poll(0.01)
        remaining = producer.flush(120)
        assert not kill_at, f"only {ledger.count()} acknowledged: the load never reached every kill"
    finally:
        producer.flush(10)
    try:
        stored = _read_back(broker.kafka_bootstrap)
    finally:
        broker.stop()
    lost = {place: v for place, v in ledger.acknowledged.items() if stored.get(place) != v}
    values = list(stored.values())
    duplicates = len(values) - len(set(values))
    print(
        f"kafka kill -9: {sent} sent, {len(ledger.acknowledged)} acknowledged,"
        f" {ledger.failed} failed, {remaining} undelivered at the end, {kills} kills,"
        f" {len(stored)} stored, {duplicates} stored twice (retries), {len(lost)} lost"
    )
    assert lost == {}, f"{len(lost)} acknowledged records lost or changed: {list(lost)[:10]}"
    assert len(ledger.acknowledged) > total // 2, "most of the load must be acknowledged"
