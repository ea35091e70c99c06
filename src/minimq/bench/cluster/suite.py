"""The cluster benchmark's rounds: gateway and direct measurements interleaved, then latency.

One cluster (3 NATS nodes, replicas 3, ``sync_interval: always``) and two gateways serve the
whole run. Every round, for 1 and for 2 gateways:

1. a fresh topic with one partition per gateway (created through gateway 1) and as many
   fresh direct streams with the gateway's stream configuration;
2. batch produce through the gateways (lane *i* writes partition *i* through gateway *i*)
   and the same produce straight to the streams with nats-py (lane *i* on connection *i*);
3. batch fetch of what each side stored, the same way;
4. the topic and the streams are deleted (the disk stays small).

Which side goes first alternates from one pair to the next, so slow drift of the machine's
other load hits both sides alike; the report shows medians over the rounds and the median of
the per-round gateway / direct ratios, with the 1-minute load average of each measurement.
Then one latency measurement per path (produce through gateway 1, long-poll through gateway 2
or through gateway 1 itself) per round.

A failed measurement becomes a line in :attr:`ClusterResults.failures` and the run goes on;
a cluster that cannot start ends it.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Final

from minimq import __version__
from minimq.bench.cluster import direct_streams, latency
from minimq.bench.cluster.direct_streams import DirectStream
from minimq.bench.cluster.lanes import Combined, Lane, run_lanes
from minimq.bench.cluster.nodes import REPLICAS, ClusterUnderTest
from minimq.bench.cluster.settings import ClusterSettings
from minimq.bench.cpu import CpuMeter
from minimq.bench.deps import require
from minimq.bench.machine import load_average, machine_info
from minimq.bench.runner import run_async

GATEWAY: Final = "gateway"
DIRECT: Final = "direct"
OPERATIONS: Final = ("produce", "fetch")
LATENCY_PATHS: Final = {
    "other gateway": (0, 1),
    "same gateway": (0, 0),
}
"""Latency rows: (producing gateway, consuming gateway) by name."""
ADMIN_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One throughput measurement."""

    round: int
    per_second: float
    records: int
    load1: float
    """1-minute load average when the measurement started."""
    client_cpu_us: float
    """CPU per record of the processes doing the JetStream client work: the gateways, or the
    direct lanes."""
    nats_cpu_us: float
    """CPU per record of the three NATS nodes together."""


@dataclass(frozen=True, slots=True)
class LatencySample:
    round: int
    result: latency.LatencyResult
    load1: float


@dataclass(frozen=True, slots=True)
class Measurement:
    """One throughput measurement of a round: which side does what where."""

    round: int
    gateways: int
    side: str
    operation: str
    topic: str
    streams: list[DirectStream]


@dataclass
class ClusterResults:
    settings: ClusterSettings
    throughput: dict[tuple[str, int, str], list[Sample]] = field(default_factory=dict)
    """(operation, gateways, side) -> one sample per round."""
    latency: dict[str, list[LatencySample]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def samples(self, operation: str, gateways: int, side: str) -> list[Sample]:
        return self.throughput.get((operation, gateways, side), [])

    def ratios(self, operation: str, gateways: int) -> list[float]:
        """Gateway / direct throughput of each round in which both were measured."""
        direct = {s.round: s.per_second for s in self.samples(operation, gateways, DIRECT)}
        return [
            s.per_second / direct[s.round]
            for s in self.samples(operation, gateways, GATEWAY)
            if direct.get(s.round)
        ]

    def median_ratio(self, operation: str, gateways: int) -> float | None:
        ratios = self.ratios(operation, gateways)
        return statistics.median(ratios) if ratios else None


def _load1() -> float:
    return os.getloadavg()[0]


async def _streams(cluster: ClusterUnderTest, streams: list[DirectStream], *, create: bool) -> None:
    """Create (or delete) the direct measurement's streams."""
    nats = require("nats", "nats-py")
    nc = await nats.connect(servers=cluster.servers, connect_timeout=10)
    try:
        for stream in streams:
            if create:
                await direct_streams.create(nc, stream, REPLICAS)
            else:
                await direct_streams.delete(nc, stream)
    finally:
        await nc.close()


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=ADMIN_TIMEOUT_S) as response:
        response.read()


class ClusterBench:
    """Runs :class:`ClusterSettings` on a fresh cluster; ``run()`` returns the results.

    ``say`` receives one line per finished measurement (figures with the load average).
    Single-threaded; lanes run in child processes (:mod:`~minimq.bench.cluster.lanes`).
    """

    def __init__(self, settings: ClusterSettings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.results = ClusterResults(settings)
        self._say = say

    def run(self) -> ClusterResults:
        started = time.perf_counter()
        self.results.machine = machine_info()
        with ClusterUnderTest(max(self.settings.gateway_counts)) as cluster:
            self.results.versions = self._versions(cluster)
            for round_ in range(self.settings.runs):
                for gateways in self.settings.gateway_counts:
                    self._guarded(
                        f"round {round_ + 1} {gateways} gateway(s)",
                        functools.partial(self._throughput, cluster, round_, gateways),
                    )
                for name, path in LATENCY_PATHS.items():
                    self._guarded(
                        f"round {round_ + 1} latency ({name})",
                        functools.partial(self._latency, cluster, round_, name, path),
                    )
        self.results.elapsed_s = time.perf_counter() - started
        self.results.machine["Load average at end (1, 5, 15 min)"] = load_average()
        return self.results

    def _guarded(self, what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:
            lines = str(exc).strip().splitlines() or [""]
            summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
            self.results.failures.append(f"{what} failed: {type(exc).__name__}: {summary}")
            self._say(f"{what} FAILED: {type(exc).__name__}: {summary}")

    # -- throughput ------------------------------------------------------------------------

    def _throughput(self, cluster: ClusterUnderTest, round_: int, gateways: int) -> None:
        label = f"r{round_}-g{gateways}"
        topic = f"bench-{label}"
        streams = [
            direct_streams.direct_stream(cluster.namespace, label, p) for p in range(gateways)
        ]
        admin = cluster.gateway_url(0)
        _http("POST", f"{admin}/v1/topics", {"name": topic, "partitions": gateways})
        run_async(functools.partial(_streams, cluster, streams, create=True))
        try:
            order = [GATEWAY, DIRECT] if (round_ + gateways) % 2 == 0 else [DIRECT, GATEWAY]
            produced: dict[str, list[int]] = {}
            for side in order:
                what = Measurement(round_, gateways, side, "produce", topic, streams)
                produced[side] = self._measure(cluster, what, None)
            for side in order:
                what = Measurement(round_, gateways, side, "fetch", topic, streams)
                self._measure(cluster, what, produced[side])
        finally:
            _http("DELETE", f"{admin}/v1/topics/{topic}")
            run_async(functools.partial(_streams, cluster, streams, create=False))

    def _lanes(
        self, cluster: ClusterUnderTest, what: Measurement, available: list[int] | None
    ) -> list[Lane]:
        """One lane per partition; a fetch lane reads what its produce lane stored."""
        s = self.settings
        lanes = []
        for index, stream in enumerate(what.streams):
            records = s.records // len(what.streams) if available is None else available[index]
            kind = f"{what.side}-{what.operation}"
            if what.side == GATEWAY:
                target, where, subjects = cluster.gateway_url(index), what.topic, ("", "")
            else:
                target, where = ",".join(cluster.servers), stream.name
                subjects = (stream.subject, stream.commit_subject)
            lanes.append(
                Lane(kind, target, where, index, records, s.time_cap_s, s.batch, s.value_bytes,
                     *subjects)
            )  # fmt: skip
        return lanes

    def _measure(
        self, cluster: ClusterUnderTest, what: Measurement, available: list[int] | None
    ) -> list[int]:
        """Run the measurement's lanes, record its sample; the records each lane moved."""
        lanes = self._lanes(cluster, what, available)
        load1 = _load1()
        gateway_cpu = [CpuMeter(cluster.gateways[i].pid) for i in range(what.gateways)]
        nats_cpu = [CpuMeter(pid) for pid in cluster.node_pids]
        results = run_lanes(lanes)
        combined = Combined.of(results)
        nats_s = sum(meter.seconds() for meter in nats_cpu)
        if what.side == GATEWAY:
            client_s = sum(meter.seconds() for meter in gateway_cpu)
        else:
            client_s = combined.lane_cpu_s
        per_record = 1e6 / combined.records if combined.records else 0.0
        sample = Sample(
            what.round, combined.per_second, combined.records, load1,
            client_s * per_record, nats_s * per_record,
        )  # fmt: skip
        key = (what.operation, what.gateways, what.side)
        self.results.throughput.setdefault(key, []).append(sample)
        via = "gateway(s)" if what.side == GATEWAY else "direct nats-py connection(s)"
        self._say(
            f"round {what.round + 1}/{self.settings.runs} {what.operation} via {what.gateways} "
            f"{via}: {sample.per_second:,.0f} msgs/s ({sample.records:,} records), client-side "
            f"CPU {sample.client_cpu_us:.1f} us/msg, NATS CPU {sample.nats_cpu_us:.1f} us/msg, "
            f"load {load1:.2f}"
        )
        return [result.records for result in results]

    # -- latency ---------------------------------------------------------------------------

    def _latency(
        self, cluster: ClusterUnderTest, round_: int, name: str, path: tuple[int, int]
    ) -> None:
        s = self.settings
        topic = f"latency-r{round_}-{name.replace(' ', '-')}"
        producer, consumer = (cluster.gateway_url(index) for index in path)
        _http("POST", f"{producer}/v1/topics", {"name": topic, "partitions": 1})
        try:
            load1 = _load1()
            result = run_async(
                lambda: latency.end_to_end(
                    producer,
                    consumer,
                    topic,
                    rate=s.latency_rate,
                    seconds=s.latency_seconds,
                    drain_s=s.latency_drain_s,
                    value_bytes=s.value_bytes,
                )
            )
        finally:
            _http("DELETE", f"{producer}/v1/topics/{topic}")
        self.results.latency.setdefault(name, []).append(LatencySample(round_, result, load1))
        lost = f", {result.lost} LOST" if result.lost else ""
        self._say(
            f"round {round_ + 1}/{s.runs} latency at {s.latency_rate:,} msgs/s ({name}): "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"p99.9 {result.p999_ms:.2f} ms ({result.records:,} records{lost}), load {load1:.2f}"
        )

    @staticmethod
    def _versions(cluster: ClusterUnderTest) -> dict[str, str]:
        completed = subprocess.run(
            [cluster.binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        return {
            "minimq": __version__,
            "nats-server": completed.stdout.strip().removeprefix("nats-server: "),
            "nats-py": metadata.version("nats-py"),
            "aiohttp": metadata.version("aiohttp"),
        }
