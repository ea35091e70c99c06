"""The measurements, written once against :class:`~minimq.bench.peers.base.Session`.

Every workload is bounded twice: by a message count (``Settings.messages``) and
by a wall-clock cap (``Settings.time_cap_s``); whichever comes first ends it,
and the number of messages actually moved is recorded beside the result, so a
slow configuration finishes in time and says how much it did.

Latency is measured open-loop: the producer sends message *i* at its scheduled
time ``start + i / rate`` (everything that fell due while the previous send was
in flight goes out together as one batch), and a message's latency is its
arrival at the follower minus its *scheduled* time. A broker that stalls the
producer is therefore charged for the wait, rather than hiding it
(no coordinated omission). Producer and follower run in this one process, so
both timestamps come from the same clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minimq.bench.settings import Settings

if TYPE_CHECKING:
    # Annotations only: at run time this import would close a cycle (peers -> the MiniMQ
    # peer -> kafka_workloads -> workloads) for a process whose first import is this module.
    from minimq.bench.peers.base import Session

SEQUENCE_DIGITS = 12


def payload(sequence: int, size: int) -> str:
    """A ``size``-character ASCII value that starts with its sequence number."""
    return f"{sequence:0{SEQUENCE_DIGITS}d}".ljust(size, "x")


def sequence_of(value: str) -> int:
    return int(value[:SEQUENCE_DIGITS])


@dataclass(frozen=True, slots=True)
class Throughput:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles in milliseconds; ``lost`` messages did not arrive in time and count as
    infinitely late (``math.inf``) in the percentiles."""

    messages: int
    lost: int
    p50_ms: float
    p99_ms: float
    p999_ms: float


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (``fraction`` in 0..1)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


async def produce_sequential(session: Session, topic: str, settings: Settings) -> Throughput:
    """Workload 1: one message per round trip, each waiting for the previous acknowledgement."""
    await session.create_topic(topic)
    value = payload(0, settings.value_bytes)
    start = time.perf_counter()
    deadline = start + settings.time_cap_s
    sent = 0
    while sent < settings.messages and time.perf_counter() < deadline:
        await session.produce_one(topic, value)
        sent += 1
    return Throughput(sent, time.perf_counter() - start)


async def produce_batched(session: Session, topic: str, settings: Settings) -> Throughput:
    """Workload 2: batches (MiniMQ requests, Redis pipelines, JetStream async publishes)."""
    await session.create_topic(topic)
    batch = [payload(i, settings.value_bytes) for i in range(settings.batch_size)]
    start = time.perf_counter()
    deadline = start + settings.time_cap_s
    sent = 0
    while sent < settings.messages and time.perf_counter() < deadline:
        size = min(settings.batch_size, settings.messages - sent)
        await session.produce_batch(topic, batch[:size])
        sent += size
    return Throughput(sent, time.perf_counter() - start)


async def produce_concurrent(session: Session, topic: str, settings: Settings) -> Throughput:
    """Workload 3: ``settings.producers`` tasks, each sending one message per round trip."""
    await session.create_topic(topic)
    value = payload(0, settings.value_bytes)
    start = time.perf_counter()
    deadline = start + settings.time_cap_s
    claimed = 0

    async def producer() -> int:
        nonlocal claimed
        sent = 0
        while claimed < settings.messages and time.perf_counter() < deadline:
            claimed += 1
            await session.produce_one(topic, value)
            sent += 1
        return sent

    counts = await asyncio.gather(*(producer() for _ in range(settings.producers)))
    return Throughput(sum(counts), time.perf_counter() - start)


async def consume_batched(
    session: Session, topic: str, available: int, settings: Settings
) -> Throughput:
    """Workload 4: read back the ``available`` messages of ``topic``, a batch per request."""
    start = time.perf_counter()
    read = await session.consume(topic, available, settings.batch_size, start + settings.time_cap_s)
    return Throughput(read, time.perf_counter() - start)


async def end_to_end_latency(
    session: Session, topic: str, rate: int, settings: Settings
) -> Latency:
    """Workload 5: produce at a fixed ``rate`` for ``latency_seconds``; follow and time arrivals."""
    await session.create_topic(topic)
    total = max(1, round(rate * settings.latency_seconds))
    arrivals: dict[int, float] = {}
    start = time.perf_counter() + 0.05  # the follower is subscribed before the first send

    def arrived(value: str) -> None:
        arrivals.setdefault(sequence_of(value), time.perf_counter())

    drain_deadline = start + settings.latency_seconds + settings.latency_drain_s

    async def produce() -> None:
        # Stops at the drain deadline too: a broker that cannot keep up has the
        # messages it was never sent counted as lost.
        sent = 0
        while sent < total and time.perf_counter() < drain_deadline:
            now = time.perf_counter()
            due = min(total, math.floor((now - start) * rate) + 1)
            if due <= sent:
                await asyncio.sleep(start + sent / rate - now)
                continue
            values = [payload(i, settings.value_bytes) for i in range(sent, due)]
            await session.produce_batch(topic, values)
            sent = due

    await asyncio.gather(produce(), session.follow(topic, total, arrived, drain_deadline))
    latencies = sorted(
        (arrival - (start + sequence / rate)) * 1000 for sequence, arrival in arrivals.items()
    )
    lost = total - len(latencies)
    # A message that never arrived counts as infinitely late, so it cannot improve a percentile.
    latencies.extend([math.inf] * lost)
    return Latency(
        messages=total - lost,
        lost=lost,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        p999_ms=percentile(latencies, 0.999),
    )


async def bulk_fill(
    session: Session, topic: str, current: int, target: int, settings: Settings
) -> None:
    """Grow ``topic`` from ``current`` to ``target`` messages, two big batches in flight.

    The last ``settings.batch_size`` messages go as one batch of their own, so
    that whatever the partition size, a read at its end finds the same batch
    size there (brokers that store batches as one unit decode or serve the
    whole batch around the offset read). Raises :class:`TimeoutError` after
    ``settings.bulk_time_cap_s``.
    """
    values = [payload(i, settings.value_bytes) for i in range(settings.bulk_batch)]
    tail = min(settings.batch_size, target - current)
    remaining = target - current - tail
    deadline = time.perf_counter() + settings.bulk_time_cap_s

    async def writer() -> None:
        nonlocal remaining
        while remaining > 0:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{topic!r} not grown to {target:,} messages in time")
            size = min(settings.bulk_batch, remaining)
            remaining -= size
            await session.produce_batch(topic, values[:size])

    await asyncio.gather(writer(), writer())
    if tail > 0:
        await session.produce_batch(topic, values[:tail])


async def read_last_latency(session: Session, topic: str, count: int, reads: int) -> list[float]:
    """Milliseconds of ``reads`` sequential single-message reads at the end of ``topic``."""
    timings = []
    for _ in range(reads):
        start = time.perf_counter()
        await session.read_last(topic, count)
        timings.append((time.perf_counter() - start) * 1000)
    return sorted(timings)
