"""How much the cluster benchmark does: the full run and the ``--quick`` smoke run."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Sizes and time caps of ``minimq bench --cluster``."""

    runs: int = 3
    """Rounds; in each, every gateway measurement is paired with its direct one."""
    records: int = 100_000
    """Upper bound of records per throughput measurement, split evenly over its lanes."""
    time_cap_s: float = 5.0
    """Upper bound of seconds per lane and measurement."""
    batch: int = 1_000
    """Records per produce call and per fetch (the JetStream atomic batch limit)."""
    value_bytes: int = 100
    gateway_counts: tuple[int, ...] = (1, 2)
    """The throughput rows: through this many gateways (and as many direct connections)."""
    latency_rate: int = 1_000
    """Messages per second of the end-to-end latency rows."""
    latency_seconds: float = 5.0
    latency_drain_s: float = 5.0
    """How long after the last scheduled send a follower may still wait for stragglers."""

    def with_runs(self, runs: int) -> ClusterSettings:
        return replace(self, runs=runs)


FULL = ClusterSettings()

QUICK = ClusterSettings(
    runs=1, records=4_000, time_cap_s=1.0, latency_seconds=0.5, latency_drain_s=5.0
)
