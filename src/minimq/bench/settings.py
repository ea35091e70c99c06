"""How much each benchmark run does: the full run and the ``--quick`` smoke run."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Settings:
    """Sizes and time caps; see :mod:`minimq.bench.workloads` for how they bound each workload."""

    runs: int = 3
    """Independent repetitions (fresh server each); the report shows median and min-max."""
    messages: int = 200_000
    """Upper bound of messages per throughput workload."""
    time_cap_s: float = 3.0
    """Upper bound of seconds per throughput workload."""
    value_bytes: int = 100
    batch_size: int = 1_000
    producers: int = 64
    latency_rates: tuple[int, ...] = (1_000, 10_000)
    latency_seconds: float = 1.5
    latency_drain_s: float = 3.0
    """How long after the last scheduled send a follower may still wait for stragglers."""
    raw_http_seconds: float = 2.0
    """Duration of each wrk run against MiniMQ's HTTP API."""
    growth_sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000, 10_000_000)
    """Partition sizes of the fetch-latency cost-growth test (MiniMQ)."""
    growth_peer_max: int = 100_000
    """Largest size the peers are grown to in the cost-growth test (time budget)."""
    growth_reads: int = 200
    """Reads of the last message per size and round."""
    bulk_batch: int = 10_000
    """Messages per request when building the cost-growth partitions."""
    profile_seconds: float = 5.0
    """Length of each py-spy recording of ``minimq bench --profile``."""
    bulk_time_cap_s: float = 240.0
    """Upper bound of seconds for growing one partition to its next size."""

    def with_runs(self, runs: int) -> Settings:
        return replace(self, runs=runs)


FULL = Settings()

QUICK = Settings(
    runs=1,
    messages=2_000,
    time_cap_s=0.5,
    latency_rates=(1_000, 10_000),
    latency_seconds=0.3,
    latency_drain_s=2.0,
    raw_http_seconds=0.5,
    growth_sizes=(1_000, 10_000),
    growth_peer_max=10_000,
    growth_reads=20,
    bulk_batch=5_000,
    profile_seconds=1.0,
)
