"""End-to-end latency through the gateways at a fixed rate, timestamps in the payload.

Open loop, like :func:`minimq.bench.workloads.end_to_end_latency`: record *i* is due at
``start + i / rate``; everything that fell due while the previous produce call was in flight
goes out together in the next call (``POST /v1/topics/<t>/records`` to the producing
gateway). Each value carries its sequence number and its *scheduled* send time
(``time.perf_counter_ns``), so a stalled producer is charged for the stall (no coordinated
omission). A follower long-polls the consuming gateway
(``GET .../partitions/0/records?wait_ms=500``, the next offset each time) and takes, per
record, its arrival minus the time in its payload. Producer and follower run in this one
process, so both timestamps come from the same clock. A record that has not arrived
``drain_s`` after the last scheduled send counts as lost, infinitely late, in the percentiles.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Final

import aiohttp
import orjson

from minimq.bench.workloads import percentile

FOLLOW_WAIT_MS: Final = 500
FOLLOW_LIMIT: Final = 1000
SEQUENCE_DIGITS: Final = 12
TIME_DIGITS: Final = 20
REQUEST_TIMEOUT_S: Final = 60.0
JSON: Final = {"Content-Type": "application/json"}


def stamped_value(sequence: int, scheduled_ns: int, size: int) -> str:
    """``size`` ASCII characters: the sequence, the scheduled send time in ns, padding."""
    return f"{sequence:0{SEQUENCE_DIGITS}d}:{scheduled_ns:0{TIME_DIGITS}d}".ljust(size, "x")


def parse_stamp(value: str) -> tuple[int, int]:
    """(sequence, scheduled send time in ns) of a :func:`stamped_value`."""
    sequence, _, rest = value.partition(":")
    return int(sequence), int(rest[:TIME_DIGITS])


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Milliseconds; ``lost`` records count as infinitely late."""

    records: int
    lost: int
    p50_ms: float
    p99_ms: float
    p999_ms: float


async def _produce(
    http: aiohttp.ClientSession,
    url: str,
    *,
    total: int,
    rate: int,
    start_ns: int,
    value_bytes: int,
    stop_ns: int,
) -> None:
    sent = 0
    while sent < total and time.perf_counter_ns() < stop_ns:
        now = time.perf_counter_ns()
        due = min(total, (now - start_ns) * rate // 1_000_000_000 + 1)
        if due <= sent:
            next_ns = start_ns + sent * 1_000_000_000 // rate
            await asyncio.sleep(max(0.0, (next_ns - now) / 1e9))
            continue
        records = [
            {
                "value": stamped_value(i, start_ns + i * 1_000_000_000 // rate, value_bytes),
                "partition": 0,
            }
            for i in range(sent, due)
        ]
        async with http.post(url, data=orjson.dumps({"records": records}), headers=JSON) as r:
            body = await r.read()
            if r.status != 200:
                raise RuntimeError(f"produce to {url}: HTTP {r.status}: {body[:300]!r}")
        sent = due


async def _follow(
    http: aiohttp.ClientSession, url: str, total: int, arrivals: dict[int, int], stop_ns: int
) -> None:
    offset = 0
    while offset < total and time.perf_counter_ns() < stop_ns:
        params = {"offset": offset, "limit": FOLLOW_LIMIT, "wait_ms": FOLLOW_WAIT_MS}
        async with http.get(url, params=params) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"fetch from {url}: HTTP {response.status}: {body[:300]!r}")
        arrived = time.perf_counter_ns()
        page = orjson.loads(body)
        for record in page["records"]:
            sequence, scheduled = parse_stamp(record["value"])
            arrivals.setdefault(sequence, arrived - scheduled)
        offset = int(page["next_offset"])


async def end_to_end(
    producer_url: str,
    consumer_url: str,
    topic: str,
    *,
    rate: int,
    seconds: float,
    drain_s: float,
    value_bytes: int,
) -> LatencyResult:
    """Produce ``rate`` records/s for ``seconds`` to partition 0 of ``topic`` (which exists)
    through ``producer_url``; follow it through ``consumer_url``."""
    total = max(1, round(rate * seconds))
    arrivals: dict[int, int] = {}  # sequence -> latency in ns
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as producing,
        aiohttp.ClientSession(timeout=timeout) as following,
    ):
        for session, url in ((producing, producer_url), (following, consumer_url)):
            async with session.get(f"{url}/healthz") as response:  # connections open first
                await response.read()
        start_ns = time.perf_counter_ns() + 50_000_000  # the follower polls before the first send
        stop_ns = start_ns + int((seconds + drain_s) * 1e9)
        await asyncio.gather(
            _produce(
                producing,
                f"{producer_url}/v1/topics/{topic}/records",
                total=total,
                rate=rate,
                start_ns=start_ns,
                value_bytes=value_bytes,
                stop_ns=stop_ns,
            ),
            _follow(
                following,
                f"{consumer_url}/v1/topics/{topic}/partitions/0/records",
                total,
                arrivals,
                stop_ns,
            ),
        )
    latencies = sorted(ns / 1e6 for sequence, ns in arrivals.items() if sequence < total)
    lost = total - len(latencies)
    latencies.extend([math.inf] * lost)
    return LatencyResult(
        records=total - lost,
        lost=lost,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        p999_ms=percentile(latencies, 0.999),
    )
