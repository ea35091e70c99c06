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
RESOURCE_METRICS = (
    Metric("rss_mib", "7. Broker RSS after the run", "MiB", False),
    Metric("disk_bytes_per_message", "7. Disk bytes per message", "B", False),
)


def all_metrics(settings: Settings) -> list[Metric]:
    """Every metric in report order (the raw-HTTP rows beside their client counterparts)."""
    sequential, batched, concurrent, consume = THROUGHPUT_METRICS
    latency = [
        latency_metric(rate, stat)
        for rate in settings.latency_rates
        for stat in ("p50", "p99", "p999")
    ]
    return [
        sequential, RAW_HTTP_SEQUENTIAL, batched, concurrent, RAW_HTTP_CONCURRENT, consume,
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
    profiles: list[Profile] = field(default_factory=list)
    """Server runs that raised; their numbers are missing from the tables."""
    elapsed_s: float = 0.0

    def add(self, level: str, broker: str, metric: str, value: float, messages: int = 0) -> None:
        cell = self.cells.setdefault((level, broker, metric), Cell())
        cell.values.append(value)
        cell.messages.append(messages)

    def cell(self, level: str, broker: str, metric: str) -> Cell | None:
        return self.cells.get((level, broker, metric))

    def add_growth(self, broker: str, size: int, stat: str, value: float) -> None:
        self.growth.setdefault((broker, size, stat), []).append(value)

    def brokers(self, level: str) -> list[str]:
        return list(self.settings_by_level.get(level, {}))
