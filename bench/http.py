"""HTTP benchmark of one broker process (not a test): produce, batch, fetch, latency.

Starts ``minimq broker`` on 127.0.0.1 with a temporary data directory
(fsync=always unless told otherwise) and measures:

1. single-message ``POST /produce`` at 1 and 64 connections (wrk if installed,
   else an aiohttp load generator);
2. batch produce of 1,000 x 100-byte records per request;
3. fetch throughput (limit=10,000 records per request);
4. produce -> long-poll consumer latency p50/p99 at a steady 1,000 msgs/s.

Every phase is bounded in time. Numbers on a shared machine are noisy, so
each phase also prints the broker's CPU time per message (user + system, from
/proc), which moves far less with other load than throughput does, and the
single-message phase is repeated against a bare aiohttp handler (same loop,
same JSON library, no broker) started by this script, so the ratio to what
the framework alone reaches on this machine at this moment is visible.

    python bench/http.py [--seconds 5] [--fsync always] [--no-baseline]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib ``http`` package; drop its directory from
# the import path so ``import http.client`` (used by aiohttp/httpx) still works.
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import aiohttp  # noqa: E402
import orjson  # noqa: E402
import uvloop  # noqa: E402
from tests.support.processes import BrokerProcess, free_port, wait_for_http  # noqa: E402

SINGLE_BODY = orjson.dumps({"topic": "bench-single", "message": {"sensor": "s1", "value": 21.5}})


# The baseline: what aiohttp alone serves for the same request and reply shape.
BARE_SERVER = """
import sys, orjson, uvloop
from aiohttp import web

async def produce(request):
    body = orjson.loads(await request.read())
    reply = {"topic": body["topic"], "partition": 0, "offset": 0}
    return web.Response(body=orjson.dumps(reply), status=201, content_type="application/json")

async def healthz(request):
    return web.Response(body=b"{}", content_type="application/json")

app = web.Application()
app.router.add_post("/produce", produce)
app.router.add_get("/healthz", healthz)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


class CpuMeter:
    """CPU seconds (user + system) a process used between ``start`` and ``stop``."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._started = 0.0

    def _now(self) -> float:
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks

    def start(self) -> None:
        self._started = self._now()

    def per(self, count: float) -> str:
        """``µs/msg`` of CPU since ``start``, for ``count`` messages."""
        used = self._now() - self._started
        return f"broker CPU {used / max(count, 1) * 1e6:6.1f} us/msg"


def wrk_produce(url: str, connections: int, seconds: float) -> float:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    body = SINGLE_BODY.decode().replace('"', '\\"')
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = "{body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    try:
        result = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "-s",
                str(script),
                f"{url}/produce",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
    finally:
        script.unlink()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    assert match, result.stdout
    return float(match.group(1))


async def aiohttp_produce(url: str, connections: int, seconds: float) -> float:
    done = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                async with session.post(
                    f"{url}/produce", data=SINGLE_BODY, headers={"Content-Type": "application/json"}
                ) as response:
                    assert response.status == 201
                    await response.read()
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return done / seconds


async def batch_produce(url: str, seconds: float, connections: int = 4) -> float:
    records = [{"value": "x" * 100} for _ in range(1000)]
    body = orjson.dumps({"records": records})
    sent = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal sent
            while time.monotonic() < deadline:
                async with session.post(
                    f"{url}/v1/topics/bench-batch/records",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    assert response.status == 200, await response.text()
                    await response.read()
                sent += len(records)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return sent / (time.monotonic() - started)


_FETCH_TAIL = re.compile(rb'"next_offset":(\d+),"high_watermark":(\d+),"start_offset":(\d+)}$')


async def fetch_throughput(url: str, seconds: float, fetchers: int = 2) -> float:
    """Records per second served by concurrent fetchers paging through one partition.

    The client reads only the offsets at the end of each body (no full JSON
    parse), so the measurement is about the broker, not the load generator.
    """
    received = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:

        async def fetcher() -> None:
            nonlocal received
            offset = 0
            while time.monotonic() < deadline:
                params = {"offset": str(offset), "limit": "10000", "max_bytes": "16777216"}
                async with session.get(
                    f"{url}/v1/topics/bench-batch/partitions/0/records", params=params
                ) as response:
                    body = await response.read()
                match = _FETCH_TAIL.search(body[-200:])
                assert match, body[-200:]
                next_offset, high_watermark, start_offset = map(int, match.groups())
                received += next_offset - offset
                offset = start_offset if next_offset >= high_watermark else next_offset

        started = time.monotonic()
        await asyncio.gather(*(fetcher() for _ in range(fetchers)))
        return received / (time.monotonic() - started)


async def end_to_end_latency(
    url: str, seconds: float, rate: int = 1000
) -> tuple[float, float, int]:
    """Producer at ``rate`` msgs/s; a long-polling consumer; ms from send to receipt."""
    latencies: list[float] = []
    sent_at: dict[int, float] = {}
    total = int(seconds * rate)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/topics", json={"name": "bench-latency"}) as response:
            await response.read()

        # Start at the end, so records of an earlier run on the same broker are not counted.
        async with session.get(
            f"{url}/v1/topics/bench-latency/partitions/0/records", params={"offset": "latest"}
        ) as response:
            start_offset = orjson.loads(await response.read())["next_offset"]

        async def consumer() -> None:
            offset = start_offset
            while len(latencies) < total:
                async with session.get(
                    f"{url}/v1/topics/bench-latency/partitions/0/records",
                    params={"offset": str(offset), "wait_ms": "1000", "limit": "1000"},
                ) as response:
                    body = orjson.loads(await response.read())
                now = time.perf_counter()
                for record in body["records"]:
                    latencies.append(now - sent_at[record["value"]])
                offset = body["next_offset"]

        async def producer() -> None:
            start = time.perf_counter()
            in_flight = []
            for i in range(total):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at[i] = time.perf_counter()
                in_flight.append(asyncio.create_task(produce_one(i)))
            await asyncio.gather(*in_flight)

        async def produce_one(i: int) -> None:
            async with session.post(
                f"{url}/v1/topics/bench-latency/records", json={"records": [{"value": i}]}
            ) as response:
                await response.read()

        await asyncio.wait_for(asyncio.gather(consumer(), producer()), timeout=seconds + 30)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    return p50, p99, len(ordered)


def single_produce(url: str, connections: int, seconds: float) -> float:
    if shutil.which("wrk") is not None:
        return wrk_produce(url, connections, seconds)
    return uvloop.run(aiohttp_produce(url, connections, seconds))


def bare_baseline(seconds: float) -> float:
    """Single-message req/s of the bare aiohttp handler at 64 connections."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=server)
        return single_produce(f"http://127.0.0.1:{port}", 64, seconds)
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each phase")
    parser.add_argument("--fsync", default="always", help="broker fsync policy")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare aiohttp run")
    args = parser.parse_args()
    seconds = args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        broker = BrokerProcess(data, ["--fsync", args.fsync, "--log-level", "WARNING"])
        with broker:
            url = broker.url
            assert broker.process is not None
            cpu = CpuMeter(broker.process.pid)
            load = "wrk" if shutil.which("wrk") else "aiohttp"
            print(f"broker {url} fsync={args.fsync} load={load} uptime: {os.getloadavg()}")
            for connections in (1, 64):
                cpu.start()
                rate = single_produce(url, connections, seconds)
                print(
                    f"single POST /produce, {connections:>2} connections: {rate:>10,.0f} req/s"
                    f"    {cpu.per(rate * seconds)}"
                )
            if not args.no_baseline:
                bare = bare_baseline(seconds)
                print(
                    f"  bare aiohttp handler, 64 connections:  {bare:>10,.0f} req/s"
                    f"    (broker reached {rate / bare:.0%} of it)"
                )
            cpu.start()
            started = time.monotonic()
            rate = uvloop.run(batch_produce(url, seconds))
            count = rate * (time.monotonic() - started)
            print(
                f"batch produce 1,000 x 100 B:            {rate:>10,.0f} msgs/s    {cpu.per(count)}"
            )
            cpu.start()
            started = time.monotonic()
            rate = uvloop.run(fetch_throughput(url, seconds))
            count = rate * (time.monotonic() - started)
            print(
                f"fetch (limit 10,000, 2 fetchers):       {rate:>10,.0f} msgs/s    {cpu.per(count)}"
            )
            # One uncounted second first: the topic, its segment files and the
            # connections are created then, not inside the measured runs.
            uvloop.run(end_to_end_latency(url, 1.0))
            runs = [uvloop.run(end_to_end_latency(url, seconds)) for _ in range(3)]
            for p50, p99, count in runs:
                print(
                    f"produce -> long-poll at 1,000 msgs/s:   p50 {p50:.2f} ms, p99 {p99:.2f} ms"
                    f"  ({count} messages)"
                )
            print(
                "  median of 3 runs:                     "
                f"p50 {statistics.median(r[0] for r in runs):.2f} ms, "
                f"p99 {statistics.median(r[1] for r in runs):.2f} ms"
            )


if __name__ == "__main__":
    main()
