"""Kafka-protocol benchmark of one broker process (not a test): produce and consume.

Starts ``minimq broker`` on 127.0.0.1 with a temporary data directory
(``--fsync always`` unless told otherwise) and a Kafka port, and measures
with 100-byte records on a one-partition topic:

1. confluent-kafka (librdkafka) producer, ``acks=all``, ``linger.ms=5``,
   ``batch.size`` 1 MiB, no compression: messages/s from the first send until
   the last delivery report;
2. confluent-kafka consumer reading those records back from the start
   (``fetch.max.bytes`` 50 MiB): messages/s;
3. beside them, the HTTP batch path on the same broker: ``POST
   /v1/topics/{t}/records`` with 1,000 records per request (4 in flight) and
   ``GET .../records?limit=10000`` pages.

Each phase prints the broker's CPU time per message (user + system, from
/proc), which moves far less with other load than throughput does, and the
client process's own CPU, so it is visible which side is the limit on a
small machine. ``--profile`` records the broker with py-spy during the Kafka
phases and prints where its time goes.

    python bench/kafka.py [--messages 2000000] [--seconds 20] [--fsync always] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# bench/ holds a script named like the stdlib ``http`` package: keep the
# directory off the import path so ``import http.client`` still works.
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import confluent_kafka  # noqa: E402
import httpx  # noqa: E402
from tests.support.processes import BrokerProcess  # noqa: E402

from minimq.bench.profiling import Sampler, summarize  # noqa: E402

VALUE_BYTES = 100
HTTP_BATCH = 1_000
HTTP_IN_FLIGHT = 4
HTTP_FETCH_LIMIT = 10_000


class CpuMeter:
    """CPU seconds (user + system) a process used between ``start`` and ``used``."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._started = self._now()

    def _now(self) -> float:
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks

    def used(self) -> float:
        return self._now() - self._started


def own_cpu() -> float:
    """CPU seconds of this process and of its children that exited (kcat)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class Phase:
    name: str
    messages: int
    seconds: float
    broker_cpu_s: float
    client_cpu_s: float

    def line(self) -> str:
        rate = self.messages / self.seconds if self.seconds else 0.0
        per = 1e6 / max(self.messages, 1)
        return (
            f"{self.name:<34} {self.messages:>10,} msgs {rate:>12,.0f} msgs/s"
            f"   broker CPU {self.broker_cpu_s * per:6.2f} us/msg"
            f"   client CPU {self.client_cpu_s * per:6.2f} us/msg"
        )


def measured(name: str, broker_pid: int, run: Callable[[], int]) -> Phase:
    meter, client_before = CpuMeter(broker_pid), own_cpu()
    start = time.perf_counter()
    messages = run()
    seconds = time.perf_counter() - start
    return Phase(name, messages, seconds, meter.used(), own_cpu() - client_before)


def kafka_produce(bootstrap: str, topic: str, messages: int, seconds: float) -> int:
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": 1024 * 1024,
            "message.max.bytes": 8 * 1024 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1024 * 1024,
            "compression.type": "none",
        }
    )
    delivered = failed = 0

    def report(err: Any, _: Any) -> None:
        nonlocal delivered, failed
        if err is None:
            delivered += 1
        else:
            failed += 1

    value = b"x" * VALUE_BYTES
    chunk = [{"value": value} for _ in range(10_000)]
    deadline = time.perf_counter() + seconds
    sent = 0
    while sent < messages and time.perf_counter() < deadline:
        size = min(len(chunk), messages - sent)
        try:
            queued = producer.produce_batch(topic, chunk[:size], partition=0, on_delivery=report)
        except BufferError:
            queued = 0
        sent += queued
        if queued < size:
            # produce_batch marks the messages that did not fit the queue: fresh ones.
            chunk = [{"value": value} for _ in range(10_000)]
            producer.poll(0.005)
        else:
            producer.poll(0)
    producer.flush(120)
    if failed:
        raise RuntimeError(f"{failed} deliveries failed")
    return delivered


def kafka_consume(bootstrap: str, topic: str, messages: int, seconds: float) -> int:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench",
            "enable.auto.commit": False,
            "fetch.max.bytes": 50 * 1024 * 1024,
            "max.partition.fetch.bytes": 50 * 1024 * 1024,
            "fetch.wait.max.ms": 100,
            "queued.min.messages": 1_000_000,
        }
    )
    consumer.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
    read = 0
    deadline = time.perf_counter() + seconds
    try:
        while read < messages and time.perf_counter() < deadline:
            batch = consumer.consume(num_messages=100_000, timeout=0.5)
            # Without enable.partition.eof, errors come alone (not between records).
            if batch and batch[0].error() is not None:
                raise RuntimeError(str(batch[0].error()))
            read += len(batch)
    finally:
        consumer.close()
    return read


KCAT_PRODUCER = ["-X", "linger.ms=5", "-X", "batch.size=1048576", "-X", "acks=all",
                 "-X", "queue.buffering.max.messages=1000000"]  # fmt: skip
KCAT_CONSUMER = ["-X", "fetch.max.bytes=52428800", "-X", "queued.min.messages=1000000"]


def write_lines(path: Path, messages: int) -> None:
    with path.open("wb") as out:
        for _ in range(0, messages, 10_000):
            out.write((b"x" * VALUE_BYTES + b"\n") * 10_000)


def kcat_produce(bootstrap: str, topic: str, messages: int, lines: Path, seconds: float) -> int:
    """kcat (librdkafka in C, no Python per message) producing the lines of ``lines``."""
    with lines.open("rb") as stdin:
        subprocess.run(
            ["kcat", "-b", bootstrap, "-P", "-t", topic, "-p", "0", *KCAT_PRODUCER],
            stdin=stdin, check=True, timeout=seconds + 120,
        )  # fmt: skip
    return messages


def kcat_consume(bootstrap: str, topic: str, messages: int, seconds: float) -> int:
    subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
         "-c", str(messages), "-q", "-f", "%o\n", *KCAT_CONSUMER],
        stdout=subprocess.DEVNULL, check=True, timeout=seconds + 120,
    )  # fmt: skip
    return messages


async def http_produce(url: str, topic: str, messages: int, seconds: float) -> int:
    body = {"records": [{"value": "x" * (VALUE_BYTES - 2)} for _ in range(HTTP_BATCH)]}
    sent = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal sent
            while sent < messages and time.perf_counter() < deadline:
                sent += HTTP_BATCH
                async with session.post(f"{url}/v1/topics/{topic}/records", json=body) as answer:
                    if answer.status != 200:
                        raise RuntimeError(await answer.text())
                    await answer.read()

        await asyncio.gather(*(worker() for _ in range(HTTP_IN_FLIGHT)))
    return sent


async def http_consume(url: str, topic: str, messages: int, seconds: float) -> int:
    offset = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:
        while offset < messages and time.perf_counter() < deadline:
            async with session.get(
                f"{url}/v1/topics/{topic}/partitions/0/records",
                params={"offset": str(offset), "limit": str(HTTP_FETCH_LIMIT)},
            ) as answer:
                page = await answer.json()
            if not page["records"]:
                break
            offset = page["next_offset"]
    return offset


def create_topic(url: str, topic: str) -> None:
    answer = httpx.post(f"{url}/v1/topics", json={"name": topic, "partitions": 1}, timeout=30)
    if answer.status_code != 201:
        raise RuntimeError(answer.text)


def profiled(broker_pid: int, seconds: float, run: Callable[[], Phase]) -> tuple[Phase, str]:
    with Sampler(broker_pid, seconds) as sampler:
        phase = run()
    if not sampler.raw:
        return phase, f"(no profile: {sampler.error or 'py-spy recorded nothing'})"
    samples, top = summarize(sampler.raw, 15)
    lines = [f"  broker profile during {phase.name}: {samples} samples; self% / total%"]
    lines += [f"  {f.self_percent:5.1f} {f.total_percent:5.1f}  {f.function}" for f in top]
    return phase, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="cap per phase")
    parser.add_argument("--fsync", default="always")
    parser.add_argument("--profile", action="store_true", help="py-spy the broker (Kafka phases)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="minimq-bench-kafka-"))
    data = workdir / "data"
    data.mkdir()
    broker = BrokerProcess(data, ["--fsync", args.fsync], kafka=True).start(timeout=60)
    assert broker.process is not None
    pid = broker.process.pid
    profiles: list[str] = []
    try:
        create_topic(broker.url, "kafka")
        create_topic(broker.url, "http")
        print(
            f"fsync={args.fsync}, {VALUE_BYTES}-byte records, 1 partition,"
            f" {os.cpu_count()} CPUs, confluent-kafka {confluent_kafka.version()[0]}"
            f" (librdkafka {confluent_kafka.libversion()[0]})"
        )

        def produce() -> Phase:
            return measured(
                "kafka produce (confluent-kafka)",
                pid,
                lambda: kafka_produce(broker.kafka_bootstrap, "kafka", args.messages, args.seconds),
            )

        def consume(count: int) -> Callable[[], Phase]:
            return lambda: measured(
                "kafka consume (confluent-kafka)",
                pid,
                lambda: kafka_consume(broker.kafka_bootstrap, "kafka", count, args.seconds),
            )

        if args.profile:
            produced, profile = profiled(pid, min(args.seconds, 10), produce)
            profiles.append(profile)
        else:
            produced = produce()
        print(produced.line(), flush=True)
        if args.profile:
            consumed, profile = profiled(pid, min(args.seconds, 10), consume(produced.messages))
            profiles.append(profile)
        else:
            consumed = consume(produced.messages)()
        print(consumed.line(), flush=True)

        if shutil.which("kcat"):
            create_topic(broker.url, "kcat")
            count = (args.messages // 10_000) * 10_000
            lines = workdir / "lines.txt"
            write_lines(lines, count)
            kcat_in = measured(
                "kafka produce (kcat)",
                pid,
                lambda: kcat_produce(broker.kafka_bootstrap, "kcat", count, lines, args.seconds),
            )
            lines.unlink()
            print(kcat_in.line(), flush=True)
            kcat_out = measured(
                "kafka consume (kcat)",
                pid,
                lambda: kcat_consume(broker.kafka_bootstrap, "kcat", count, args.seconds),
            )
            print(kcat_out.line(), flush=True)
        else:
            print("(kcat not installed: no kcat rows)")

        http_in = measured(
            f"http batch produce ({HTTP_BATCH}/request)",
            pid,
            lambda: asyncio.run(http_produce(broker.url, "http", args.messages, args.seconds)),
        )
        print(http_in.line(), flush=True)
        http_out = measured(
            f"http fetch ({HTTP_FETCH_LIMIT}/request)",
            pid,
            lambda: asyncio.run(http_consume(broker.url, "http", http_in.messages, args.seconds)),
        )
        print(http_out.line(), flush=True)
        for profile in profiles:
            print(profile)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
