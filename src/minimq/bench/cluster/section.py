"""The "Cluster (JetStream backend)" section of ``docs/benchmarks.md``, rendered from
:class:`~minimq.bench.cluster.suite.ClusterResults` and put into the report between its
markers (:mod:`~minimq.bench.cluster.splice`)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from minimq.bench.cluster.splice import SECTION_END, SECTION_START, splice
from minimq.bench.cluster.suite import (
    DIRECT,
    GATEWAY,
    LATENCY_PATHS,
    OPERATIONS,
    ClusterResults,
    Sample,
)

TITLE: Final = "## Cluster (JetStream backend)"
GOAL: Final = 0.8
"""The gateway's throughput, at least this fraction of the same workload sent directly."""

WORKLOAD_TITLES: Final = {
    "produce": "Batch produce: HTTP batches of 1,000 / atomic batch publish of 1,000",
    "fetch": "Batch fetch: HTTP fetch of 1,000 / batch direct get of 1,000",
}
LATENCY_TITLES: Final = {
    "other gateway": "produce through gateway 1, long-poll through gateway 2",
    "same gateway": "produce and long-poll through gateway 1",
}


def _spread(values: Sequence[float], digits: int = 0) -> str:
    """Median, and min-max in brackets when there are several values."""
    if not values:
        return "-"

    def show(value: float) -> str:
        return "lost" if math.isinf(value) else f"{value:,.{digits}f}"

    median = show(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({show(min(values))}-{show(max(values))})"


def _ratio(ratios: Sequence[float]) -> str:
    """``0.91x``, with the min-max of the rounds in brackets when there are several."""
    if not ratios:
        return "-"
    median = f"{statistics.median(ratios):.2f}x"
    return median if len(ratios) == 1 else f"{median} ({min(ratios):.2f}-{max(ratios):.2f})"


def _loads(samples: Sequence[float]) -> str:
    if not samples:
        return "-"
    low, high = min(samples), max(samples)
    return f"{low:.1f}" if round(low, 1) == round(high, 1) else f"{low:.1f}-{high:.1f}"


def _counts(samples: Sequence[Sample]) -> str:
    counts = [sample.records for sample in samples]
    if not counts:
        return "-"
    return f"{min(counts):,}" if min(counts) == max(counts) else f"{min(counts):,}-{max(counts):,}"


def throughput_table(results: ClusterResults) -> list[str]:
    lines = [
        "| workload | gateways / direct connections | through the gateways, msgs/s ↑ "
        "| direct nats-py, msgs/s ↑ | gateway / direct | goal ≥ 0.8x "
        "| client-side CPU µs/msg: gateways / direct lanes "
        "| NATS nodes CPU µs/msg: gateway / direct | load average (1 min) | records per run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for operation in OPERATIONS:
        for gateways in results.settings.gateway_counts:
            ours = results.samples(operation, gateways, GATEWAY)
            theirs = results.samples(operation, gateways, DIRECT)
            if not ours and not theirs:
                continue
            ratios = results.ratios(operation, gateways)
            median = results.median_ratio(operation, gateways)
            verdict = "-" if median is None else ("yes" if median >= GOAL else "**no**")
            row = [
                WORKLOAD_TITLES[operation],
                str(gateways),
                _spread([s.per_second for s in ours]),
                _spread([s.per_second for s in theirs]),
                _ratio(ratios),
                verdict,
                f"{_spread([s.client_cpu_us for s in ours], 1)} / "
                f"{_spread([s.client_cpu_us for s in theirs], 1)}",
                f"{_spread([s.nats_cpu_us for s in ours], 1)} / "
                f"{_spread([s.nats_cpu_us for s in theirs], 1)}",
                _loads([s.load1 for s in [*ours, *theirs]]),
                _counts([*ours, *theirs]),
            ]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def cpu_summary(results: ClusterResults) -> list[str]:
    """Per operation and gateway count: total CPU per record (the lanes' process doing the
    JetStream client work plus the three nodes), gateway against direct. On a machine whose
    cores are all busy, throughput follows CPU per record, and CPU per record moves far less
    with the other load than throughput does."""
    lines = []
    for operation in OPERATIONS:
        for gateways in results.settings.gateway_counts:
            totals = []
            for side in (GATEWAY, DIRECT):
                samples = results.samples(operation, gateways, side)
                if samples:
                    totals.append(
                        statistics.median(s.client_cpu_us + s.nats_cpu_us for s in samples)
                    )
            if len(totals) == 2 and totals[0] > 0:
                ours, theirs = totals
                lines.append(
                    f"- {operation}, {gateways} gateway(s): {ours:.1f} µs through the gateways, "
                    f"{theirs:.1f} µs directly; direct / gateway {theirs / ours:.2f}x, the "
                    "throughput ratio to expect where CPU is the limit."
                )
    return lines


def latency_table(results: ClusterResults) -> list[str]:
    rate = results.settings.latency_rate
    lines = [
        f"| path at {rate:,} msgs/s | p50 ms ↓ | p99 ms ↓ | p99.9 ms ↓ | records per run "
        "| lost | load average (1 min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in LATENCY_PATHS:
        samples = results.latency.get(name, [])
        if not samples:
            continue
        row = [
            LATENCY_TITLES[name],
            _spread([s.result.p50_ms for s in samples], 2),
            _spread([s.result.p99_ms for s in samples], 2),
            _spread([s.result.p999_ms for s in samples], 2),
            f"{max(s.result.records + s.result.lost for s in samples):,}",
            str(sum(s.result.lost for s in samples)),
            _loads([s.load1 for s in samples]),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def method(results: ClusterResults) -> list[str]:
    s = results.settings
    return [
        "- Cluster: 3 `nats-server` nodes on 127.0.0.1 of this one machine, the node "
        "configuration `minimq up --cluster` writes (`jetstream { sync_interval: always }`, "
        "file storage, full-mesh routes); every stream replicas 3. Gateways: "
        "`minimq broker --backend nats://<node 1>,<node 2>,<node 3> --replicas 3 "
        "--nats-namespace <fresh> --kafka-port 0`, two of them for the whole run. "
        "All on free ports, in temp directories, stopped by PID.",
        f"- Throughput: {s.value_bytes}-byte string values, {s.batch:,} records per call. "
        f"A measurement moves at most {s.records:,} records, split evenly over its lanes, or "
        f"runs {s.time_cap_s:g} s per lane, whichever comes first. Lane *i* is one process "
        "writing (then reading back) partition *i*: through gateway *i* over plain aiohttp + "
        "orjson (`POST /v1/topics/<t>/records`, `GET .../partitions/<i>/records?limit=1000`), "
        "or with nats-py straight to a stream with the gateway's stream configuration "
        "(`allow_atomic`, `allow_direct`, headers-only RePublish), doing what the gateway's "
        "JetStream backend does: one atomic batch publish per 1,000 records (the same "
        "`Nats-Batch-*`, `Nats-Msg-Id` and `Mq-Ts` headers, the commit awaited) and one batch "
        "direct get of 1,000 per read (same `max_bytes`). The lanes of a measurement connect "
        "first and start together; the rate is all their records over the span from the first "
        "start to the last end.",
        f"- Fairness on a loaded machine: {s.runs} round(s); in each, every gateway measurement "
        "is paired with its direct one, and which of the two goes first alternates from pair "
        "to pair. Cells show the median and, in brackets, min-max over the rounds; "
        "*gateway / direct* is the median of the per-round ratios. The load average is the "
        "1-minute figure when each measurement started (range over the row's measurements).",
        "- CPU per message (user + system, from the kernel's per-thread counters): "
        "*client-side* is the gateway processes for the gateway rows and the direct lane "
        "processes for the direct rows (the process doing the nats-py work either way); "
        "*NATS nodes* is the three servers together. HTTP lanes' own CPU is not counted.",
        f"- End-to-end latency: {s.latency_rate:,} records/s for {s.latency_seconds:g} s to a "
        "one-partition topic, open loop (whatever fell due during a produce call goes in the "
        "next call); each value carries its scheduled send time, and a follower long-polls "
        "(`wait_ms=500`) and takes arrival minus that time. A record not arrived "
        f"{s.latency_drain_s:g} s after the last send counts as lost (infinitely late).",
    ]


def render(results: ClusterResults, command: str) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    versions = [f"{name} {value}" for name, value in sorted(results.versions.items())]
    lines = [
        SECTION_START,
        TITLE,
        "",
        f"Measured {when} with `{command}` in {results.elapsed_s / 60:.1f} minutes on the "
        "machine below, the cluster, both gateways and the load generators on it together "
        "(so every figure includes their competition for the same cores). Reproduce with "
        f"`{command}`.",
        "",
        "### Throughput: through the gateways and directly with nats-py",
        "",
        *throughput_table(results),
        "",
        "Total CPU per record (client-side + NATS nodes, medians), which moves far less with "
        "the machine's other load than throughput does:",
        "",
        *cpu_summary(results),
        "",
        "### End-to-end latency through the gateways",
        "",
        *latency_table(results),
        "",
        "### Method",
        "",
        *method(results),
        "",
        "### Machine and versions",
        "",
        *(f"- {name}: {value}" for name, value in results.machine.items()),
        f"- {', '.join(versions)}",
    ]
    if results.failures:
        lines += ["", "### Failures in this run", "", *(f"- {f}" for f in results.failures)]
    lines += [SECTION_END]
    return "\n".join(lines)


def write_section(results: ClusterResults, output: Path, command: str) -> None:
    """Put the section into the report at ``output`` (created if missing)."""
    text = output.read_text(encoding="utf-8") if output.exists() else ""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(splice(text, render(results, command)), encoding="utf-8")
