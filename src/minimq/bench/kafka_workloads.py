"""The Kafka-protocol workloads: confluent-kafka (librdkafka) against MiniMQ's Kafka port.

They measure what a Kafka client gets from the broker, beside the HTTP batch
rows of the same server: the producer with ``acks=all``, ``linger.ms=5``,
``batch.size`` 1 MiB and no compression, fed with ``produce_batch``, and the
consumer reading those records back from the start with
``consume(num_messages=...)`` on an assigned partition (no group rebalance).
Both are bounded like every workload (:mod:`minimq.bench.workloads`) by the
message count and the time cap; a produce queued before the cap is still
waited for (its delivery counts, and so does the time it took).

confluent-kafka's client is synchronous (librdkafka runs its own threads), so
these functions block; the runner calls them in a worker thread.
``bench/kafka.py`` in the repository measures the same with more records,
kcat and a py-spy profile.
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from minimq.bench.deps import MissingDependency, require
from minimq.bench.settings import Settings
from minimq.bench.workloads import Throughput, payload

PACKAGE = "confluent-kafka"
PRODUCE_CHUNK = 10_000
"""Messages per ``produce_batch`` call."""
CONSUME_BATCH = 100_000
"""Upper bound of ``num_messages`` per ``consume`` call."""
POLL_TIMEOUT_S = 0.5
FLUSH_TIMEOUT_S = 120.0
FIRST_RECORD_TIMEOUT_S = 60.0
"""How long the consumer may wait for its first record, whatever the time cap: connecting
and fetching metadata must not end a short (``--quick``) workload with nothing read."""

PRODUCER_CONFIG = {
    "acks": "all",
    "linger.ms": 5,
    "batch.size": 1024 * 1024,
    "message.max.bytes": 8 * 1024 * 1024,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1024 * 1024,
    "compression.type": "none",
}
CONSUMER_CONFIG = {
    "group.id": "minimq-bench",
    "enable.auto.commit": False,
    "fetch.max.bytes": 50 * 1024 * 1024,
    "max.partition.fetch.bytes": 50 * 1024 * 1024,
    "fetch.wait.max.ms": 100,
    "queued.min.messages": 1_000_000,
}


def unavailable_reason() -> str | None:
    """``"confluent-kafka not installed"`` when the client cannot be imported, else ``None``."""
    try:
        require("confluent_kafka", PACKAGE)
    except MissingDependency:
        return f"{PACKAGE} not installed"
    return None


def client_version() -> str:
    kafka = require("confluent_kafka", PACKAGE)
    return f"{metadata.version(PACKAGE)} (librdkafka {kafka.libversion()[0]})"


def produce(bootstrap: str, topic: str, settings: Settings) -> Throughput:
    """Produce up to ``settings.messages`` records to partition 0 of ``topic``; time from the
    producer's creation until the last delivery report."""
    kafka = require("confluent_kafka", PACKAGE)
    start = time.perf_counter()
    producer = kafka.Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONFIG})
    delivered = 0
    errors: list[str] = []

    def on_delivery(error: Any, _message: Any) -> None:
        nonlocal delivered
        if error is None:
            delivered += 1
        else:
            errors.append(str(error))

    value = payload(0, settings.value_bytes).encode()

    def fresh_chunk() -> list[dict[str, bytes]]:
        return [{"value": value} for _ in range(PRODUCE_CHUNK)]

    chunk = fresh_chunk()
    deadline = start + settings.time_cap_s
    queued = 0
    while queued < settings.messages and time.perf_counter() < deadline:
        size = min(PRODUCE_CHUNK, settings.messages - queued)
        try:
            accepted = producer.produce_batch(
                topic, chunk[:size], partition=0, on_delivery=on_delivery
            )
        except BufferError:
            accepted = 0
        queued += accepted
        if accepted < size:
            # The local queue is full; produce_batch marked the rejected dicts, so take
            # fresh ones, and let librdkafka deliver some of what is queued.
            chunk = fresh_chunk()
            producer.poll(0.005)
        else:
            producer.poll(0)
    undelivered = producer.flush(FLUSH_TIMEOUT_S)
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} Kafka deliveries failed, the first: {errors[0]}")
    if undelivered:
        raise TimeoutError(
            f"{undelivered} Kafka messages undelivered after {FLUSH_TIMEOUT_S:.0f} s"
        )
    return Throughput(delivered, seconds)


def consume(bootstrap: str, topic: str, available: int, settings: Settings) -> Throughput:
    """Read the ``available`` records of partition 0 of ``topic`` from offset 0; time from the
    consumer's creation until the last record arrived."""
    kafka = require("confluent_kafka", PACKAGE)
    start = time.perf_counter()
    consumer = kafka.Consumer({"bootstrap.servers": bootstrap, **CONSUMER_CONFIG})
    read = 0
    deadline = start + settings.time_cap_s
    first_record_deadline = start + max(settings.time_cap_s, FIRST_RECORD_TIMEOUT_S)
    try:
        # Offset 0, the start of the fresh topic, rather than OFFSET_BEGINNING: librdkafka
        # would look that up with ListOffsets, and retries it only after 500 ms when the
        # broker connection is not up yet, which would dominate a short workload.
        consumer.assign([kafka.TopicPartition(topic, 0, 0)])
        while read < available:
            now = time.perf_counter()
            if now >= (deadline if read else first_record_deadline):
                break
            wanted = min(CONSUME_BATCH, available - read)
            batch = consumer.consume(num_messages=wanted, timeout=POLL_TIMEOUT_S)
            # Without enable.partition.eof, an error comes alone, not between records.
            if batch and batch[0].error() is not None:
                raise RuntimeError(f"Kafka consume failed: {batch[0].error()}")
            read += len(batch)
        seconds = time.perf_counter() - start
    finally:
        consumer.close()
    if read == 0 and available:
        raise TimeoutError(
            f"no Kafka record of {topic!r} arrived in {FIRST_RECORD_TIMEOUT_S:.0f} s"
        )
    return Throughput(read, seconds)
