"""Storage engine benchmark: append, sequential read and random reads (not a test).

Usage: ``python bench/storage.py [--records N] [--producers P] [--skip-10m] [--dir DIR]``

Workloads (100-byte values, batches of 1,000 records):

1. append N records at ``fsync=always`` (P concurrent producers, group-committed);
2. read them all back in order, 1,000 records per call;
3. single random-offset reads (``max_records=1``) in partitions of 1k, 1M
   and 10M records; the 10M partition is built at ``fsync=never`` to keep the
   setup short.

The process gets the same garbage-collector and allocator tuning as the
broker process (``minimq.server.tuning``) unless ``--no-tuning`` is given.
Numbers are wall-clock on whatever else the machine is doing; run it twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py is named like the stdlib ``http`` package, which aiohttp (imported
# with minimq.server) needs; keep this directory off the import path.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from minimq.core.records import NewRecord  # noqa: E402
from minimq.core.topic_config import FsyncPolicy, TopicConfig  # noqa: E402
from minimq.server.tuning import tune_for_serving  # noqa: E402
from minimq.storage import open_storage  # noqa: E402
from minimq.storage.partition import DiskPartitionLog  # noqa: E402

VALUE_BYTES = 100
BATCH = 1_000
RANDOM_READS = 3_000


def make_batches(count: int) -> list[list[NewRecord]]:
    value = os.urandom(VALUE_BYTES)
    batch = [NewRecord(None, value) for _ in range(BATCH)]
    return [batch] * (count // BATCH)


async def append_all(log: DiskPartitionLog, batches: list[list[NewRecord]], producers: int) -> None:
    queue = iter(batches)

    async def producer() -> None:
        for batch in queue:
            await log.append(batch)

    await asyncio.gather(*(producer() for _ in range(producers)))


def report(name: str, records: int, payload_bytes: int, seconds: float) -> None:
    print(
        f"{name:<44} {records / seconds:>12,.0f} records/s"
        f" {payload_bytes / seconds / 1e6:>8.1f} MB/s  ({seconds:.2f} s)"
    )


async def random_reads(log: DiskPartitionLog, label: str) -> None:
    rng = random.Random(7)
    offsets = [rng.randrange(log.start_offset, log.end_offset) for _ in range(RANDOM_READS)]
    timings = []
    for offset in offsets:
        started = time.perf_counter()
        (record,) = await log.read(offset, 1, 1 << 20)
        timings.append(time.perf_counter() - started)
        assert record.offset == offset
    timings.sort()
    print(
        f"random read, {label:<31} mean {statistics.mean(timings) * 1e6:7.1f} us"
        f"  p50 {timings[len(timings) // 2] * 1e6:7.1f} us"
        f"  p99 {timings[int(len(timings) * 0.99)] * 1e6:7.1f} us"
    )


async def run(root: Path, records: int, producers: int, skip_10m: bool) -> None:
    storage = await open_storage(root / "always")
    await storage.logs.create_topic("bench", TopicConfig())
    log = storage.logs.partition("bench", 0)
    batches = make_batches(records)
    started = time.perf_counter()
    await append_all(log, batches, producers)
    seconds = time.perf_counter() - started
    report(
        f"append, fsync=always, {producers} producer(s)", records, records * VALUE_BYTES, seconds
    )

    started = time.perf_counter()
    offset, count = 0, 0
    while offset < log.end_offset:
        got = await log.read(offset, BATCH, 1 << 24)
        count += len(got)
        offset = got[-1].offset + 1
    seconds = time.perf_counter() - started
    assert count == records
    report("sequential read, 1,000 per call", records, records * VALUE_BYTES, seconds)

    await storage.logs.create_topic("small", TopicConfig())
    small = storage.logs.partition("small", 0)
    await append_all(small, make_batches(1_000), 1)
    await random_reads(small, "1k records")
    await random_reads(log, f"{records // 1000}k records")
    await storage.close()

    if not skip_10m:
        storage = await open_storage(root / "never", FsyncPolicy.parse("never"))
        await storage.logs.create_topic("big", TopicConfig())
        big = storage.logs.partition("big", 0)
        started = time.perf_counter()
        await append_all(big, make_batches(10_000_000), 2)
        seconds = time.perf_counter() - started
        report("append 10M (setup), fsync=never", 10_000_000, 10_000_000 * VALUE_BYTES, seconds)
        await random_reads(big, "10M records")
        await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--skip-10m", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: tmp)")
    parser.add_argument(
        "--no-tuning",
        action="store_true",
        help="skip the GC and allocator tuning the broker process applies before serving",
    )
    args = parser.parse_args()
    if not args.no_tuning:
        tune_for_serving()
    root = Path(tempfile.mkdtemp(prefix="minimq-bench-", dir=args.dir))
    try:
        asyncio.run(run(root, args.records, args.producers, args.skip_10m))
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
