"""Storage and core benchmark of the Kafka path (not a test): produce_raw and fetch_raw.

Runs the broker core in this process on a temporary data directory at
``fsync=always`` (no network, no protocol codec: what the Kafka listener adds
comes on top) and measures, for client batches of 100-byte records of about
16 KiB, 256 KiB and 1 MB:

1. ``produce_raw``: ``--producers`` concurrent tasks producing the same batch
   over and over to one partition for ``--seconds`` (group commit: one write
   and one fsync for whatever is queued); msgs/s and process CPU per message
   (user + system of every thread, so the fsync worker counts too);
2. ``fetch_raw``: one reader reading the whole partition from offset 0 with
   ``max_bytes`` 1 MiB (Kafka's default per-partition fetch size); msgs/s and
   CPU per message;
3. what a per-record scan at produce would add (aiokafka's C decoder over
   every record of the batch, reading each header list), as a share of the
   measured produce CPU per message.

The machine is shared: compare runs taken back to back.

    python bench/kafka_storage.py [--seconds 3] [--producers 8] [--codec none]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from minimq.core import Broker, BrokerSettings
from minimq.core.topic_config import TopicConfig
from minimq.storage import open_storage

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
RECORD_BYTES = 100
BATCH_SIZES = (16 * 1024, 256 * 1024, 1_000_000)


def client_batch(target_bytes: int, codec: int) -> tuple[bytes, int]:
    """A batch of 100-byte records whose uncompressed records fill about ``target_bytes``."""
    builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, target_bytes)
    now = time.time_ns() // 1_000_000
    count = 0
    while True:
        value = f"{count:08d}".encode() + b"x" * (RECORD_BYTES - 8)
        if builder.append(count, now, None, value, []) is None:
            break
        count += 1
    return bytes(builder.build()), count


def cpu() -> float:
    return time.process_time()


async def produce_phase(
    broker: Broker, topic: str, frame: bytes, count: int, seconds: float, producers: int
) -> tuple[float, float, int]:
    stop = time.monotonic() + seconds
    stored = 0

    async def producer() -> None:
        nonlocal stored
        while time.monotonic() < stop:
            await broker.produce_raw(topic, 0, frame)
            stored += count

    started, cpu_started = time.perf_counter(), cpu()
    await asyncio.gather(*(producer() for _ in range(producers)))
    elapsed, used = time.perf_counter() - started, cpu() - cpu_started
    return stored / elapsed, used / stored * 1e6, stored


async def fetch_phase(broker: Broker, topic: str, max_bytes: int) -> tuple[float, float]:
    end = await broker.latest_offset(topic, 0)
    offset = 0
    started, cpu_started = time.perf_counter(), cpu()
    while offset < end:
        result = await broker.fetch_raw(topic, 0, offset, max_bytes)
        last = result.batches[-1]
        # The consumer's next offset: after the last batch of the last chunk.
        view = memoryview(last)
        position = 0
        while position < len(view):
            base = int.from_bytes(view[position : position + 8], "big")
            length = int.from_bytes(view[position + 8 : position + 12], "big")
            delta = int.from_bytes(view[position + 23 : position + 27], "big")
            offset = base + delta + 1
            position += length + 12
    elapsed, used = time.perf_counter() - started, cpu() - cpu_started
    return end / elapsed, used / end * 1e6


def scan_cost_us(frame: bytes, count: int, rounds: int = 20) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for record in DefaultRecordBatch(frame):
            _ = record.headers
    return (time.perf_counter() - started) / rounds / count * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--codec", choices=sorted(CODECS), default="none")
    args = parser.parse_args()
    print(
        f"fsync=always, {RECORD_BYTES}-byte records, codec {args.codec}, "
        f"{args.producers} producers, {args.seconds:g} s per produce phase"
    )
    print(
        f"{'batch':>9} {'recs':>6} | {'produce msgs/s':>14} {'CPU us/msg':>10} | "
        f"{'fetch msgs/s':>12} {'CPU us/msg':>10} | {'scan us/msg':>11} {'scan/prod':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="minimq-kafka-bench-") as tmp:
        storage = await open_storage(Path(tmp))
        broker = Broker(storage, BrokerSettings(max_record_bytes=2 * 1024 * 1024))
        try:
            for size in BATCH_SIZES:
                topic = f"bench-{size}"
                await broker.create_topic(topic, TopicConfig(segment_bytes=256 * 1024 * 1024))
                frame, count = client_batch(size, CODECS[args.codec])
                rate, produce_cpu, _ = await produce_phase(
                    broker, topic, frame, count, args.seconds, args.producers
                )
                fetch_rate, fetch_cpu = await fetch_phase(broker, topic, 1024 * 1024)
                scan = scan_cost_us(frame, count)
                print(
                    f"{len(frame):>9} {count:>6} | {rate:>14,.0f} {produce_cpu:>10.3f} | "
                    f"{fetch_rate:>12,.0f} {fetch_cpu:>10.3f} | {scan:>11.3f} "
                    f"{scan / produce_cpu:>8.0%}"
                )
                await broker.delete_topic(topic)
        finally:
            await broker.close()


if __name__ == "__main__":
    asyncio.run(main())
