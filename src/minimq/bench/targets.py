"""The issue's performance targets, checked against measured medians at the strongest setting.

Targets (MiniMQ at ``fsync=always`` against each peer's strongest setting):

- batched produce ≥ 3x Redis Streams pipelined XADD and ≥ 5x JetStream async publish;
- consume ≥ 3x both;
- end-to-end p99 below both, at every fixed rate;
- fetch latency at the end of a partition flat: p50 at the largest size ≤ 2x at the smallest.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from minimq.bench.peers.base import Durability
from minimq.bench.results import Results

MINIMQ = "MiniMQ"
MINIMQ_AIOHTTP = "MiniMQ (aiohttp)"
NATS = "NATS JetStream"
REDIS = "Redis Streams"
GROWTH_LIMIT = 2.0


@dataclass(frozen=True, slots=True)
class RatioTarget:
    """MiniMQ's median of ``metric`` must be at least ``factor`` times ``peer``'s."""

    metric: str
    peer: str
    factor: float
    what: str


RATIO_TARGETS = (
    RatioTarget("produce_batched", REDIS, 3.0, "Batched produce ≥ 3x Redis pipelined XADD"),
    RatioTarget("produce_batched", NATS, 5.0, "Batched produce ≥ 5x JetStream async publish"),
    RatioTarget("consume_batched", REDIS, 3.0, "Consume ≥ 3x Redis XRANGE"),
    RatioTarget("consume_batched", NATS, 3.0, "Consume ≥ 3x JetStream pull consumer"),
)


@dataclass(frozen=True, slots=True)
class TargetCheck:
    target: str
    measured: str
    met: bool
    gap: str


def check_targets(results: Results, ours: str = MINIMQ) -> list[TargetCheck]:
    """Every target whose inputs were measured (a skipped peer or workload drops its rows).

    ``ours`` names the MiniMQ column checked: its own client (``"MiniMQ"``, the
    official result) or plain aiohttp (``"MiniMQ (aiohttp)"``).
    """
    checks: list[TargetCheck] = []
    for target in RATIO_TARGETS:
        check = _ratio_check(results, ours, target)
        if check is not None:
            checks.append(check)
    for rate in results.settings.latency_rates:
        for peer in (NATS, REDIS):
            check = _latency_check(results, ours, rate, peer)
            if check is not None:
                checks.append(check)
    growth = _growth_check(results, ours)
    if growth is not None:
        checks.append(growth)
    return checks


def _medians(results: Results, ours: str, metric: str, peer: str) -> tuple[float, float] | None:
    level = Durability.STRONGEST.value
    mine, theirs = results.cell(level, ours, metric), results.cell(level, peer, metric)
    if mine is None or theirs is None:
        return None
    return mine.median, theirs.median


def _ratio_check(results: Results, ours: str, target: RatioTarget) -> TargetCheck | None:
    medians = _medians(results, ours, target.metric, target.peer)
    if medians is None:
        return None
    mine, theirs = medians
    ratio = mine / theirs if theirs else float("inf")
    measured = f"{mine:,.0f} vs {theirs:,.0f} msgs/s = {ratio:.2f}x"
    met = ratio >= target.factor
    gap = (
        ""
        if met
        else f"{target.factor / ratio:.1f}x short ({ratio:.2f}x of the {target.factor:.0f}x asked)"
    )
    return TargetCheck(target.what, measured, met, gap)


def _latency_check(results: Results, ours: str, rate: int, peer: str) -> TargetCheck | None:
    medians = _medians(results, ours, f"latency_{rate}_p99", peer)
    if medians is None:
        return None
    mine, theirs = medians
    what = f"End-to-end p99 at {rate:,} msgs/s below {peer}"
    measured = f"{_ms(mine)} vs {_ms(theirs)}"
    met = mine < theirs
    if met:
        gap = ""
    elif math.isinf(mine):
        gap = "MiniMQ lost messages"
    else:
        gap = f"{mine - theirs:.1f} ms slower ({mine / theirs:.1f}x)"
    return TargetCheck(what, measured, met, gap)


def _ms(value: float) -> str:
    return "lost messages" if math.isinf(value) else f"{value:.1f} ms"


def _growth_check(results: Results, ours: str) -> TargetCheck | None:
    sizes = sorted(size for broker, size, _stat in results.growth if broker == ours)
    if len(sizes) < 2:
        return None
    smallest, largest = sizes[0], sizes[-1]
    first = growth_median(results, ours, smallest, "p50")
    last = growth_median(results, ours, largest, "p50")
    ratio = last / first
    what = f"Fetch latency flat (p50 ≤ 2x from {smallest:,} to {largest:,} records)"
    measured = f"{first:.2f} → {last:.2f} ms = {ratio:.2f}x"
    met = ratio <= GROWTH_LIMIT
    gap = "" if met else f"{ratio / GROWTH_LIMIT:.1f}x over the limit"
    return TargetCheck(what, measured, met, gap)


def growth_median(results: Results, broker: str, size: int, stat: str) -> float:
    return statistics.median(results.growth[(broker, size, stat)])
