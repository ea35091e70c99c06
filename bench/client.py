"""Client-library benchmark (not a test): request overhead, record decoding, Producer.

Starts ``minimq broker`` on 127.0.0.1 with a temporary data directory and
``--fsync never`` (so the numbers are about the client, not the disk), and
measures, each phase bounded by ``--seconds``:

1. ``async``: :class:`minimq.client.AsyncClient` producing one 100-byte record
   per request: sequential round-trip p50/p99, then 64 concurrent tasks (msgs/s);
2. ``sync``: sequential round-trip p50 of :class:`minimq.client.Client`, and of
   the raw transports it could sit on (httpx, urllib3 pool, ``http.client``
   keep-alive) sending the same request;
3. ``decode``: records/s turned from a fetched 1,000-record JSON page into
   :class:`~minimq.client.FetchResult` (the client's whole decode path, no I/O);
4. ``producer``: :class:`minimq.client.Producer` sending 200,000 100-byte records
   round-robin over ``--producer-topics`` topics (records/s from the first
   ``send`` to ``flush`` returning).

The machine is shared, so numbers are noisy: compare runs taken back to back.

    python bench/client.py [--phases async,sync,decode,producer] [--seconds 10]
"""

from __future__ import annotations

import sys
from pathlib import Path

# ``bench/http.py`` is named like the stdlib ``http`` package; drop this
# directory from the import path so ``import http.client`` still works.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import http.client  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
import urllib3  # noqa: E402

from minimq.client import AsyncClient, Client, Producer, _calls  # noqa: E402
from minimq.client._transport import decode_body  # noqa: E402

VALUE = "x" * 100
TOPIC = "bench"
PATH = f"/v1/topics/{TOPIC}/records"
BODY = orjson.dumps({"records": [{"value": VALUE}]})
HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(data_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "minimq", "broker", "--host", "127.0.0.1", "--port"]
    command += [str(port), "--data-dir", data_dir, "--fsync", "never", "--log-level", "WARNING"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("broker did not start within 15 s")


def stop_broker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def latencies_ms(send: Callable[[], object], requests: int, seconds: float) -> list[float]:
    for _ in range(20):
        send()
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while len(samples) < requests and time.monotonic() < deadline:
        started = time.perf_counter()
        send()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report_latency(name: str, samples: list[float]) -> None:
    cuts = statistics.quantiles(samples, n=100)
    print(f"  {name:<28} p50 {cuts[49]:6.3f} ms  p99 {cuts[98]:6.3f} ms  (n={len(samples)})")


async def async_phase(url: str, requests: int, seconds: float) -> None:
    print("async client, one 100-byte record per request")
    async with AsyncClient(url) as client:
        for _ in range(20):
            await client.produce(TOPIC, VALUE)
        samples: list[float] = []
        deadline = time.monotonic() + seconds
        while len(samples) < requests and time.monotonic() < deadline:
            started = time.perf_counter()
            await client.produce(TOPIC, VALUE)
            samples.append((time.perf_counter() - started) * 1000)
        report_latency("sequential", samples)

        tasks, per_task = 64, max(1, requests * 4 // 64)
        sent = 0

        async def worker() -> None:
            nonlocal sent
            for _ in range(per_task):
                if time.monotonic() > deadline:
                    return
                await client.produce(TOPIC, VALUE)
                sent += 1

        deadline = time.monotonic() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        elapsed = time.perf_counter() - started
        print(f"  {tasks} concurrent tasks           {sent / elapsed:8.0f} msgs/s  (n={sent})")


def sync_phase(url: str, requests: int, seconds: float) -> None:
    print("sync round trip, one 100-byte record per request")
    host, port = url.removeprefix("http://").split(":")
    with Client(url) as client:
        report_latency(
            "minimq Client", latencies_ms(lambda: client.produce(TOPIC, VALUE), requests, seconds)
        )
    with httpx.Client(base_url=url) as raw_httpx:
        report_latency(
            "httpx.Client (raw)",
            latencies_ms(
                lambda: raw_httpx.post(PATH, content=BODY, headers=HEADERS).read(),
                requests,
                seconds,
            ),
        )
    with urllib3.HTTPConnectionPool(host, int(port), maxsize=4) as pool:
        report_latency(
            "urllib3 pool (raw)",
            latencies_ms(
                lambda: pool.request("POST", PATH, body=BODY, headers=HEADERS).data,
                requests,
                seconds,
            ),
        )
    connection = http.client.HTTPConnection(host, int(port))

    def plain() -> bytes:
        connection.request("POST", PATH, body=BODY, headers=HEADERS)
        return connection.getresponse().read()

    report_latency("http.client keep-alive (raw)", latencies_ms(plain, requests, seconds))
    connection.close()


def decode_phase(url: str, seconds: float) -> None:
    print("decoding a fetched page of 1,000 records")
    with Client(url) as client:
        client.produce_batch("decode", [{"value": {"v": VALUE, "i": i}} for i in range(1000)])
    body = httpx.get(f"{url}/v1/topics/decode/partitions/0/records?limit=1000&offset=0").content
    call = _calls.fetch(
        "decode", 0, offset=0, timestamp=None, limit=1000, max_bytes=None, wait_ms=0
    )
    decoded = 0
    deadline = time.monotonic() + min(seconds, 5)
    started = time.perf_counter()
    while time.monotonic() < deadline:
        decoded += len(decode_body(call, 200, "OK", body).records)
    rate = decoded / (time.perf_counter() - started)
    print(f"  FetchResult from JSON bytes   {rate:10.0f} rec/s")


def producer_phase(url: str, records: int, topics: int, seconds: float) -> None:
    print(f"Producer, {records:,} x 100-byte records over {topics} topic(s)")
    names = [f"produced-{n}" for n in range(topics)]
    with Producer(url) as producer:
        started = time.perf_counter()
        deadline = time.monotonic() + seconds
        sent = 0
        while sent < records and time.monotonic() < deadline:
            producer.send(names[sent % topics], VALUE)
            sent += 1
        if not producer.flush(timeout=max(1.0, deadline - time.monotonic() + 30)):
            print("  flush timed out")
        elapsed = time.perf_counter() - started
    print(f"  send -> flush                 {sent / elapsed:10.0f} rec/s  (n={sent})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="async,sync,decode,producer")
    parser.add_argument("--seconds", type=float, default=10.0, help="cap per phase")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--producer-records", type=int, default=200_000)
    parser.add_argument("--producer-topics", type=int, default=1)
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    with tempfile.TemporaryDirectory(prefix="minimq-bench-client-") as data_dir:
        process, url = start_broker(data_dir)
        try:
            if "async" in phases:
                asyncio.run(async_phase(url, args.requests, args.seconds))
            if "sync" in phases:
                sync_phase(url, args.requests, args.seconds)
            if "decode" in phases:
                decode_phase(url, args.seconds)
            if "producer" in phases:
                producer_phase(url, args.producer_records, args.producer_topics, args.seconds * 6)
        finally:
            stop_broker(process)


if __name__ == "__main__":
    main()
