"""The markdown report (``docs/benchmarks.md``) rendered from :class:`Results`.

Generated sections come first; a hand-written analysis (profiles, discussion)
lives between the ``ANALYSIS_START`` and ``ANALYSIS_END`` markers and is carried
over unchanged when the report is regenerated, so re-running the benchmark
refreshes the numbers without losing it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from minimq.bench.cluster.splice import carry_over
from minimq.bench.peers.base import Durability
from minimq.bench.results import CPU_UNIT, Cell, Metric, Results, all_metrics
from minimq.bench.targets import MINIMQ, MINIMQ_AIOHTTP, check_targets, growth_median

ANALYSIS_START = "<!-- analysis:start (kept when the report is regenerated) -->"
ANALYSIS_END = "<!-- analysis:end -->"
DEFAULT_ANALYSIS = "No analysis written yet."

LEVEL_TITLES = {
    Durability.STRONGEST.value: "Strongest durability setting of each broker",
    Durability.DEFAULTS.value: "Relaxed durability (the peers' defaults)",
}


def format_value(value: float, unit: str) -> str:
    if math.isinf(value):
        return "lost"
    if unit in ("ms", CPU_UNIT):
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if unit == "MiB":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def format_cell(cell: Cell | None, metric: Metric) -> str:
    if cell is None:
        return "-"
    median = format_value(cell.median, metric.unit)
    if len(cell.values) == 1:
        return median
    low, high = (format_value(v, metric.unit) for v in (min(cell.values), max(cell.values)))
    return f"{median} ({low}-{high})"


def format_ratio(ours: Cell | None, theirs: Cell | None) -> str:
    if ours is None or theirs is None:
        return "-"
    if math.isinf(ours.median) or math.isinf(theirs.median) or theirs.median == 0:
        return "n/a"
    return f"{ours.median / theirs.median:.2f}x"


def messages_per_run(cells: list[Cell | None]) -> str:
    counts = [count for cell in cells if cell is not None for count in cell.messages if count]
    if not counts:
        return ""
    low, high = min(counts), max(counts)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def results_table(results: Results, level: str) -> list[str]:
    brokers = results.brokers(level)
    peers = [broker for broker in brokers if not broker.startswith(MINIMQ)]
    header = ["Workload", "unit", *brokers, *(f"MiniMQ / {p.split()[0]}" for p in peers)]
    lines = ["| " + " | ".join([*header, "messages per run (all brokers)"]) + " |"]
    lines.append("|" + "---|" * (len(header) + 1))
    for metric in all_metrics(results.settings):
        cells = [results.cell(level, broker, metric.key) for broker in brokers]
        reasons = [results.not_run.get((level, broker, metric.key)) for broker in brokers]
        if all(cell is None for cell in cells) and not any(reasons):
            continue
        ours = results.cell(level, MINIMQ, metric.key)
        ratios = [format_ratio(ours, results.cell(level, peer, metric.key)) for peer in peers]
        unit = metric.unit + (" ↑" if metric.higher_is_better else " ↓")
        shown = [
            f"not run: {reason}" if reason else format_cell(cell, metric)
            for cell, reason in zip(cells, reasons, strict=True)
        ]
        row = [metric.title, unit, *shown, *ratios]
        lines.append("| " + " | ".join([*row, messages_per_run(cells)]) + " |")
    return lines


def growth_table(results: Results) -> list[str]:
    brokers = list(dict.fromkeys(broker for broker, _size, _stat in results.growth))
    sizes = sorted({size for _broker, size, _stat in results.growth})
    header = ["records in the partition"]
    for broker in brokers:
        header += [f"{broker} p50 ms", f"{broker} p99 ms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for size in sizes:
        row = [f"{size:,}"]
        for broker in brokers:
            for stat in ("p50", "p99"):
                has = (broker, size, stat) in results.growth
                row.append(f"{growth_median(results, broker, size, stat):.3f}" if has else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def targets_section(results: Results) -> list[str]:
    checks = check_targets(results)
    if not checks:
        return ["No target could be checked (a peer or workload was skipped)."]
    raw = {check.target: check for check in check_targets(results, MINIMQ_AIOHTTP)}
    met = sum(check.met for check in checks)
    lines = [
        f"**{met} of {len(checks)} targets met** by MiniMQ through its own client "
        "(`minimq.client`, `fsync=always`) against each peer's strongest setting, medians. "
        "The last two columns check the same targets with MiniMQ driven over plain aiohttp, "
        "which separates the broker's cost from the client library's.",
        "",
        "| target | measured: MiniMQ vs peer | met | gap | over aiohttp | met |",
        "|---|---|---|---|---|---|",
    ]
    for check in checks:
        other = raw.get(check.target)
        raw_cells = [other.measured, _verdict(other.met)] if other else ["-", "-"]
        row = [check.target, check.measured, _verdict(check.met), check.gap, *raw_cells]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _verdict(met: bool) -> str:
    return "yes" if met else "**no**"


def method_section(results: Results) -> list[str]:
    s = results.settings
    rates = " and ".join(f"{rate:,}" for rate in s.latency_rates)
    sizes = ", ".join(f"{size:,}" for size in s.growth_sizes)
    return [
        f"- Every workload uses {s.value_bytes}-byte values and is bounded by "
        f"{s.messages:,} messages **or** {s.time_cap_s:g} s, whichever comes first; the "
        "*messages per run* column says how many were actually moved (at `fsync=always` a "
        "single client sending one message per round trip cannot move 200,000 messages "
        "inside the time budget).",
        f"- {s.runs} run(s); each run starts a fresh server in a temp directory on a free "
        "127.0.0.1 port; runs of the brokers are interleaved. Cells show the median and, "
        "in brackets, min-max over the runs.",
        "- Clients, as a Python user would write them: MiniMQ through "
        "`minimq.client.AsyncClient`; NATS through nats-py (`js.publish`, `js.publish_async` "
        "for batches, a pull consumer with `AckPolicy.NONE`, an ordered push consumer to "
        "follow, `get_msg`); Redis through redis-py asyncio (`XADD`, a non-transactional "
        "pipeline of `XADD` for batches, `XRANGE`, `XREAD BLOCK`, `XREVRANGE COUNT 1`). "
        "The *MiniMQ (aiohttp)* column runs the same workloads against the same broker "
        "over plain aiohttp + orjson (no client library), at the strongest setting only; "
        "the *raw HTTP* rows load MiniMQ's HTTP API with wrk (one record per request).",
        "- Kafka rows (*2k*, *4k*; MiniMQ only, on its Kafka port): the confluent-kafka "
        "(librdkafka) producer with `acks=all`, `linger.ms=5`, `batch.size` 1 MiB, no "
        "compression, fed with `produce_batch`, timed from its creation until the last "
        "delivery report; then a consumer on the assigned partition reading those records "
        "back from the start with `consume(num_messages=...)`, timed from its creation "
        "until the last record. Same message count and time cap as the other workloads.",
        "- Broker CPU per message: CPU time (user + system) of the broker process's threads "
        "during the workload, from the kernel's per-thread scheduler statistics, divided by "
        "the messages moved; it moves far less with other load than throughput does.",
        f"- Concurrency: {s.producers} asyncio tasks sharing one client object, each sending "
        "one message per round trip.",
        f"- End-to-end latency: the producer sends at a fixed {rates} msgs/s for "
        f"{s.latency_seconds:g} s (whatever fell due during a send goes out as the next "
        "batch); a follower in the same process timestamps each arrival. Latency is arrival "
        "minus the *scheduled* send time, so a stalled producer is charged for the stall; a "
        f"message that has not arrived {s.latency_drain_s:g} s after the last send counts as "
        "lost (infinitely late).",
        f"- Cost growth: one partition (stream) grown to {sizes} records in batches of "
        f"{s.bulk_batch:,} (the last {s.batch_size:,} records of each size as one batch of "
        "their own, so every size has the same batch at its end); at each size "
        f"{s.growth_reads} sequential reads of the last record, {s.runs} round(s). MiniMQ "
        "runs it on its `fsync=always` broker with the topic's fsync set to `never` to "
        "shorten the build (reads do not depend on it); "
        "the peers, which cannot relax durability per stream, on their default-setting "
        f"servers and up to {s.growth_peer_max:,} records (build time).",
        "- Resources: broker RSS (with child processes) at the end of a run, and the data "
        "directory's bytes divided by every message the run stored (one-message requests "
        "included: each is a batch of its own on MiniMQ's disk).",
    ]


def profiles_section(results: Results) -> list[str]:
    seconds = results.settings.profile_seconds
    lines = [
        f"MiniMQ `fsync=always` driven through `minimq.client`; each workload recorded for "
        f"{seconds:g} s with `py-spy record --format raw --nonblocking --rate 100`, the broker "
        "and the benchmark's own process at the same time. *self*: share of samples in the "
        "function itself; *incl.*: share with the function anywhere on the stack. py-spy "
        "leaves idle threads out, so the shares are of the time each process was busy "
        "(the fsync thread blocked in `os.fsync` counts as busy).",
    ]
    for profile in results.profiles:
        lines += [
            "",
            f"**{profile.workload}, {profile.process}** ({profile.samples:,} samples)",
            "",
        ]
        if not profile.frames:
            lines.append(f"No samples: {profile.error or 'py-spy recorded nothing'}.")
            continue
        lines += ["| function | self % | incl. % |", "|---|---|---|"]
        lines += [
            f"| `{frame.function}` | {frame.self_percent:.1f} | {frame.total_percent:.1f} |"
            for frame in profile.frames
        ]
    return lines


def versions_section(results: Results) -> list[str]:
    lines = [f"- {name}: {value}" for name, value in results.machine.items()]
    lines += [f"- {name}: {value}" for name, value in sorted(results.versions.items())]
    return lines


def existing_analysis(path: Path) -> str:
    if not path.exists():
        return DEFAULT_ANALYSIS
    text = path.read_text(encoding="utf-8")
    start, end = text.find(ANALYSIS_START), text.find(ANALYSIS_END)
    if start < 0 or end < start:
        return DEFAULT_ANALYSIS
    return text[start + len(ANALYSIS_START) : end].strip() or DEFAULT_ANALYSIS


def render(results: Results, charts: list[str], command: str, analysis: str) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# Benchmarks: MiniMQ, NATS JetStream and Redis Streams",
        "",
        f"Measured {when} with `{command}` in {results.elapsed_s / 60:.1f} minutes, every "
        "broker on the same machine in the same run. Numbers from a shared 2-core machine "
        "are noisy; compare within a table, not across machines. ↑: higher is better, "
        "↓: lower is better; ratios are MiniMQ's median divided by the peer's.",
        "",
        "## Targets",
        "",
        *targets_section(results),
    ]
    for level, title in LEVEL_TITLES.items():
        if not results.brokers(level):
            continue
        settings = ", ".join(
            f"{broker} `{setting}`" for broker, setting in results.settings_by_level[level].items()
        )
        lines += [
            "",
            f"## {title}",
            "",
            f"Settings: {settings}.",
            "",
            *results_table(results, level),
        ]
    if results.growth:
        servers = ", ".join(f"{b} `{s}`" for b, s in results.growth_settings.items())
        lines += [
            "",
            "## Cost growth: reading the last record of a growing partition",
            "",
            f"Servers: {servers} (see Method). Medians over the rounds of each size's p50 and p99.",
            "",
            *growth_table(results),
        ]
    if charts:
        lines += ["", "## Charts", ""]
        lines += [f"![{Path(chart).stem}]({chart})" for chart in charts]
    if results.profiles:
        lines += ["", "## Profiles (py-spy)", "", *profiles_section(results)]
    lines += ["", "## Method", "", *method_section(results)]
    lines += ["", "## Machine and versions", "", *versions_section(results)]
    if results.notes or results.failures:
        notes = [*results.failures, *results.notes]
        lines += ["", "## Notes from this run", "", *(f"- {note}" for note in notes)]
    lines += ["", "## Analysis", "", ANALYSIS_START, analysis, ANALYSIS_END, ""]
    return "\n".join(lines)


def write_report(results: Results, output: Path, charts: list[str], command: str) -> None:
    """Write the report to ``output``, keeping the analysis section of the previous one and
    its cluster section (``minimq bench --cluster`` writes that one)."""
    analysis = existing_analysis(output)
    text = carry_over(output, render(results, charts, command, analysis))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
