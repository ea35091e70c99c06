"""Prometheus metrics of one broker, on a registry of its own.

Traffic counters are fed by the core through the :class:`BrokerObserver`
hooks; request latency by the server middleware; group lag is computed from
the broker's state at scrape time, so it is never stale.

Every request updates a counter or a histogram, so updating them must cost
next to nothing. prometheus-client's ``Counter`` and ``Histogram`` take a
lock per update and walk the buckets in Python; measured with callgrind on
a one-record produce, the three updates of an append alone were 6 % of the
broker's instructions per request. So the broker keeps plain running totals
(:class:`LoopHistogram`, dicts of floats) and prometheus-client only renders
them, through :meth:`BrokerMetrics.collect`, when ``/metrics`` is scraped.

Concurrency contract: every update and every scrape runs on the event-loop
thread (the core's observer hooks, the middleware and the ``/metrics``
handler all do), so no locks are taken.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from minimq.core import GroupOffset

if TYPE_CHECKING:
    from minimq.server.response_budget import ResponseBudget

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30)


class LoopHistogram:
    """One label set's histogram: ``observe`` is a bisect and two additions."""

    __slots__ = ("_bounds", "_counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self._bounds = bounds
        # One count per bucket (value <= bound), then the +Inf bucket; not cumulative.
        self._counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1
        self.sum += value

    def cumulative_buckets(self) -> list[tuple[str, float]]:
        """``(le, observations <= le)`` pairs ending with ``+Inf``, as Prometheus wants them."""
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*map(str, self._bounds), "+Inf"), self._counts, strict=True):
            total += count
            buckets.append((bound, total))
        return buckets


class GroupLagCollector(Collector):
    """Group lag as of the last :meth:`refresh` (the store is asked asynchronously,
    and a Prometheus collector is not)."""

    def __init__(self, source: Callable[[], Awaitable[list[tuple[str, GroupOffset]]]]) -> None:
        self._source = source
        self._latest: list[tuple[str, GroupOffset]] = []

    async def refresh(self) -> None:
        self._latest = await self._source()

    def collect(self) -> Iterable[Metric]:
        lag = GaugeMetricFamily(
            "minimq_group_lag_messages",
            "Messages between a group's committed offset and the partition's end offset",
            labels=["group", "topic", "partition"],
        )
        for group, offset in self._latest:
            lag.add_metric([group, offset.topic, str(offset.partition)], offset.lag)
        yield lag


class ResponseBudgetCollector(Collector):
    """The response budget's state (:mod:`minimq.server.response_budget`), read at scrape time."""

    def __init__(self, budget: ResponseBudget) -> None:
        self._budget = budget

    def collect(self) -> Iterable[Metric]:
        budget = self._budget
        used = GaugeMetricFamily(
            "minimq_response_buffer_bytes",
            "Bytes of large responses built and not yet sent (bounded by --response-buffer-bytes)",
        )
        used.add_metric([], budget.used)
        yield used
        refused = CounterMetricFamily(
            "minimq_response_buffer_refusals",
            "Fetches answered 503 RESPONSE_BUFFER_FULL: not even one record fitted the budget",
        )
        refused.add_metric([], budget.refusals)
        yield refused
        dropped = CounterMetricFamily(
            "minimq_slow_readers_dropped",
            "Connections dropped because the client read nothing for --write-timeout",
        )
        dropped.add_metric([], budget.dropped_readers)
        yield dropped


class BrokerMetrics(Collector):
    """Counters and histograms; implements the core's ``BrokerObserver``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # topic -> [records, payload bytes]
        self._produced: dict[str, list[float]] = {}
        self._fetched: dict[str, list[float]] = {}
        self.append_seconds = LoopHistogram()
        self._request_seconds: dict[tuple[str, str, str], LoopHistogram] = {}
        # Fed by the produce lane (minimq.server.produce_lane).
        self.lane_requests = 0
        self.lane_handoffs = 0
        self._group_lag: GroupLagCollector | None = None
        self.registry.register(self)

    def watch_group_lag(
        self, source: Callable[[], Awaitable[list[tuple[str, GroupOffset]]]]
    ) -> None:
        self._group_lag = GroupLagCollector(source)
        self.registry.register(self._group_lag)

    async def refresh(self) -> None:
        """Gather what collectors cannot ask for themselves; before each scrape."""
        if self._group_lag is not None:
            await self._group_lag.refresh()

    def watch_responses(self, budget: ResponseBudget) -> None:
        self.registry.register(ResponseBudgetCollector(budget))

    def appended(self, topic: str, records: int, size: int, seconds: float) -> None:
        totals = self._produced.get(topic)
        if totals is None:
            totals = self._produced[topic] = [0.0, 0.0]
        totals[0] += records
        totals[1] += size
        self.append_seconds.observe(seconds)

    def fetched(self, topic: str, records: int, size: int) -> None:
        totals = self._fetched.get(topic)
        if totals is None:
            totals = self._fetched[topic] = [0.0, 0.0]
        totals[0] += records
        totals[1] += size

    def request_seconds(self, route: str, method: str, status: int) -> LoopHistogram:
        """The latency histogram of one (route template, method, status); callers cache it."""
        key = (route, method, str(status))
        histogram = self._request_seconds.get(key)
        if histogram is None:
            histogram = self._request_seconds[key] = LoopHistogram()
        return histogram

    def collect(self) -> Iterable[Metric]:
        yield from _counters("minimq_messages_produced", "Records appended", self._produced, 0)
        yield from _counters(
            "minimq_bytes_produced", "Record payload bytes appended", self._produced, 1
        )
        yield from _counters(
            "minimq_messages_fetched", "Records handed to consumers", self._fetched, 0
        )
        yield from _counters(
            "minimq_bytes_fetched", "Record payload bytes handed to consumers", self._fetched, 1
        )
        append = HistogramMetricFamily(
            "minimq_append_fsync_seconds",
            "Time for one batch append to be written and meet the fsync policy",
        )
        append.add_metric(
            [], self.append_seconds.cumulative_buckets(), sum_value=self.append_seconds.sum
        )
        yield append
        requests = HistogramMetricFamily(
            "minimq_http_request_seconds",
            "HTTP request latency by route, method and status",
            labels=["route", "method", "status"],
        )
        for labels, histogram in self._request_seconds.items():
            requests.add_metric(
                list(labels), histogram.cumulative_buckets(), sum_value=histogram.sum
            )
        yield requests
        lane = CounterMetricFamily(
            "minimq_produce_lane_requests", "Produce requests served by the produce lane"
        )
        lane.add_metric([], self.lane_requests)
        yield lane
        handoffs = CounterMetricFamily(
            "minimq_produce_lane_handoffs",
            "Connections the produce lane handed to the general HTTP server",
        )
        handoffs.add_metric([], self.lane_handoffs)
        yield handoffs


def _counters(
    name: str, documentation: str, totals: dict[str, list[float]], column: int
) -> Iterable[Metric]:
    family = CounterMetricFamily(name, documentation, labels=["topic"])
    for topic, values in totals.items():
        family.add_metric([topic], values[column])
    yield family
