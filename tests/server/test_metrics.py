"""The broker's metrics: running totals rendered in the Prometheus text format."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from minimq.server.metrics import LATENCY_BUCKETS, BrokerMetrics, LoopHistogram


def samples(metrics: BrokerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_value_on_a_bound_falls_in_that_bucket_and_beyond_the_last_in_inf() -> None:
    histogram = LoopHistogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        histogram.observe(value)
    assert histogram.cumulative_buckets() == [("0.1", 2), ("1.0", 4), ("+Inf", 5)]
    assert histogram.sum == pytest.approx(8.65)


def test_counters_and_histograms_in_the_exposition_format() -> None:
    metrics = BrokerMetrics()
    metrics.appended("sensors", 3, 300, 0.0004)
    metrics.appended("sensors", 2, 200, 0.002)
    metrics.fetched("sensors", 5, 500)
    route = metrics.request_seconds("/v1/topics/{topic}/records", "POST", 200)
    route.observe(0.003)
    assert metrics.request_seconds("/v1/topics/{topic}/records", "POST", 200) is route

    found = samples(metrics)
    topic = (("topic", "sensors"),)
    assert found[("minimq_messages_produced_total", topic)] == 5
    assert found[("minimq_bytes_produced_total", topic)] == 500
    assert found[("minimq_messages_fetched_total", topic)] == 5
    assert found[("minimq_bytes_fetched_total", topic)] == 500
    assert found[("minimq_append_fsync_seconds_count", ())] == 2
    assert found[("minimq_append_fsync_seconds_sum", ())] == pytest.approx(0.0024)
    assert found[("minimq_append_fsync_seconds_bucket", (("le", "0.0005"),))] == 1
    assert found[("minimq_append_fsync_seconds_bucket", (("le", "0.0025"),))] == 2
    assert found[("minimq_append_fsync_seconds_bucket", (("le", "+Inf"),))] == 2
    request = (("method", "POST"), ("route", "/v1/topics/{topic}/records"), ("status", "200"))
    assert found[("minimq_http_request_seconds_count", request)] == 1
    buckets = [
        found[("minimq_http_request_seconds_bucket", (("le", le), *request))]
        for le in [*map(str, LATENCY_BUCKETS), "+Inf"]
    ]
    assert buckets == sorted(buckets) and buckets[0] == 0 and buckets[-1] == 1
