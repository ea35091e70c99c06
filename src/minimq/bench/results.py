"""What a benchmark run produced: the metric catalogue and the collected samples.

A *cell* is one (durability level, broker, metric) and holds one value per run
plus the messages each run moved; the report prints its median and min-max.
The cost-growth test fills ``growth`` with one value per round for each
(broker, partition size, statistic).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from minimq.bench.profiling import FrameShare
from minimq.bench.settings import Settings


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool


def latency_metric(rate: int, stat: str) -> Metric:
    label = {"p50": "p50", "p99": "p99", "p999": "p99.9"}[stat]
    return Metric(
        f"latency_{rate}_{stat}", f"5. End-to-end {label} at {rate:,} msgs/s", "ms", False
    )


THROUGHPUT_METRICS = (
    Metric("produce_sequential", "1. One message per round trip", "msgs/s", True),
    Metric("produce_batched", "2. Batched produce (1,000 per call)", "msgs/s", True),
    Metric("produce_concurrent", "3. 64 concurrent producers", "msgs/s", True),
    Metric("consume_batched", "4. Consume in batches of 1,000", "msgs/s", True),
)
RAW_HTTP_SEQUENTIAL = Metric(
    "raw_http_sequential", "1b. One message per round trip, raw HTTP (wrk, 1 conn)", "msgs/s", True
)
RAW_HTTP_CONCURRENT = Metric(
    "raw_http_concurrent", "3b. 64 concurrent producers, raw HTTP (wrk, 64 conns)", "msgs/s", True
)
KAFKA_PRODUCE = Metric(
    "kafka_produce",
    "2k. Kafka produce (confluent-kafka, acks=all, linger 5 ms, 1 MiB batches)",
    "msgs/s",
    True,
)
KAFKA_CONSUME = Metric(
    "kafka_consume",
    "4k. Kafka consume (confluent-kafka, consume() of up to 100,000)",
    "msgs/s",
    True,
)
KAFKA_METRICS = (KAFKA_PRODUCE, KAFKA_CONSUME)
"""MiniMQ's Kafka port only (:mod:`minimq.bench.kafka_workloads`)."""


CPU_UNIT = "µs/msg"


def cpu_metric(metric: Metric) -> Metric:
    """The broker's CPU time per message during ``metric``'s workload (:mod:`.cpu`)."""
    workload = metric.title.split(" (", 1)[0]
    return Metric(f"{metric.key}_cpu", f"{workload}: broker CPU per message", CPU_UNIT, False)


RESOURCE_METRICS = (
    Metric("rss_mib", "7. Broker RSS after the run", "MiB", False),
    Metric("disk_bytes_per_message", "7. Disk bytes per message", "B", False),
)


def all_metrics(settings: Settings) -> list[Metric]:
    """Every metric in report order: the raw-HTTP rows beside their client counterparts,
    the Kafka rows beside the HTTP batch rows, each of those with its broker CPU."""
    sequential, batched, concurrent, consume = THROUGHPUT_METRICS
    latency = [
        latency_metric(rate, stat)
        for rate in settings.latency_rates
        for stat in ("p50", "p99", "p999")
    ]
    return [
        sequential, RAW_HTTP_SEQUENTIAL,
        batched, cpu_metric(batched), KAFKA_PRODUCE, cpu_metric(KAFKA_PRODUCE),
        concurrent, RAW_HTTP_CONCURRENT,
        consume, cpu_metric(consume), KAFKA_CONSUME, cpu_metric(KAFKA_CONSUME),
        *latency, *RESOURCE_METRICS,
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profile:
    """py-spy's view of one process during one workload (see :mod:`minimq.bench.profiling`)."""

    workload: str
    process: str
    samples: int
    frames: list[FrameShare]
    error: str = ""


@dataclass(slots=True)
class Cell:
    values: list[float] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


@dataclass(slots=True)
class Results:
    """Everything the report needs; filled by the runner from one thread."""

    settings: Settings
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    settings_by_level: dict[str, dict[str, str]] = field(default_factory=dict)
    """Durability level -> broker -> the broker's setting at that level."""
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)
    growth: dict[tuple[str, int, str], list[float]] = field(default_factory=dict)
    growth_settings: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Server runs that raised; their numbers are missing from the tables."""
    profiles: list[Profile] = field(default_factory=list)
    not_run: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(level, broker, metric) -> why it was not measured, shown in its table cell."""
    elapsed_s: float = 0.0

    def add(self, level: str, broker: str, metric: str, value: float, messages: int = 0) -> None:
        cell = self.cells.setdefault((level, broker, metric), Cell())
        cell.values.append(value)
        cell.messages.append(messages)

    def mark_not_run(self, level: str, broker: str, metric: str, reason: str) -> None:
        self.not_run[(level, broker, metric)] = reason

    def cell(self, level: str, broker: str, metric: str) -> Cell | None:
        return self.cells.get((level, broker, metric))

    def add_growth(self, broker: str, size: int, stat: str, value: float) -> None:
        self.growth.setdefault((broker, size, stat), []).append(value)

    def brokers(self, level: str) -> list[str]:
        return list(self.settings_by_level.get(level, {}))
