"""The parts of the benchmark that need no server: payloads, percentiles, parsing, targets,
rendering, optional dependencies and peer selection."""

from __future__ import annotations

import math

import pytest

from minimq.bench.deps import MissingDependency, require
from minimq.bench.peers import Durability, RedisPeer
from minimq.bench.profiling import summarize
from minimq.bench.rawhttp import parse_wrk
from minimq.bench.report import render
from minimq.bench.results import Results
from minimq.bench.runner import Runner
from minimq.bench.settings import QUICK
from minimq.bench.targets import check_targets
from minimq.bench.workloads import payload, percentile, sequence_of

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:5000/v1/topics/t/records
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.61ms    2.10ms  30.11ms   80.00%
  14880 requests in 2.00s, 2.41MB read
Requests/sec:   7430.02
Transfer/sec:      1.20MB
"""


def test_payload_has_the_size_and_carries_its_sequence() -> None:
    value = payload(123_456, 100)
    assert len(value) == 100
    assert value.isascii()
    assert sequence_of(value) == 123_456


def test_percentile_is_nearest_rank_and_counts_lost_messages() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([1.0, 2.0, math.inf], 0.99) == math.inf
    assert math.isnan(percentile([], 0.5))


def test_parse_wrk_reads_requests_and_duration() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.messages == 14_880
    assert result.per_second == pytest.approx(7440)


def test_parse_wrk_refuses_error_responses() -> None:
    with pytest.raises(RuntimeError, match="error responses"):
        parse_wrk(WRK_OUTPUT + "  Non-2xx or 3xx responses: 12\n")


def synthetic_results() -> Results:
    results = Results(QUICK)
    results.settings_by_level["strongest"] = {
        "MiniMQ": "fsync=always",
        "NATS JetStream": "sync_interval: always",
        "Redis Streams": "appendfsync always",
    }
    for broker, batched, consume, p99 in (
        ("MiniMQ", 300_000.0, 90_000.0, 4.0),
        ("NATS JetStream", 50_000.0, 20_000.0, 5.0),
        ("Redis Streams", 120_000.0, 40_000.0, 3.0),
    ):
        results.add("strongest", broker, "produce_batched", batched, 200_000)
        results.add("strongest", broker, "consume_batched", consume, 200_000)
        for rate in QUICK.latency_rates:
            results.add("strongest", broker, f"latency_{rate}_p99", p99, rate)
    for size, p50 in ((1_000, 1.0), (10_000, 2.5)):
        results.add_growth("MiniMQ", size, "p50", p50)
        results.add_growth("MiniMQ", size, "p99", p50 * 2)
    return results


def test_targets_compare_medians_and_state_the_gap() -> None:
    checks = {check.target: check for check in check_targets(synthetic_results())}
    assert checks["Batched produce ≥ 3x Redis pipelined XADD"].met is False
    assert "1.2x short" in checks["Batched produce ≥ 3x Redis pipelined XADD"].gap
    assert checks["Batched produce ≥ 5x JetStream async publish"].met is True
    assert checks["Consume ≥ 3x JetStream pull consumer"].met is True
    assert checks["End-to-end p99 at 1,000 msgs/s below NATS JetStream"].met is True
    assert checks["End-to-end p99 at 1,000 msgs/s below Redis Streams"].met is False
    growth = checks["Fetch latency flat (p50 ≤ 2x from 1,000 to 10,000 records)"]
    assert growth.met is False
    assert growth.measured == "1.00 → 2.50 ms = 2.50x"


def test_render_shows_medians_ranges_and_ratios() -> None:
    results = synthetic_results()
    results.add("strongest", "MiniMQ", "produce_batched", 200_000.0, 200_000)
    results.add("strongest", "MiniMQ", "produce_batched", 400_000.0, 200_000)
    text = render(results, [], "minimq bench", "kept analysis")
    row = next(line for line in text.splitlines() if line.startswith("| 2. Batched"))
    assert "300,000 (200,000-400,000)" in row
    assert "6.00x" in row  # MiniMQ / NATS
    assert "2.50x" in row  # MiniMQ / Redis
    assert "kept analysis" in text


def test_summarize_folds_py_spy_stacks_to_functions() -> None:
    raw = (
        "main (app.py:10);handle (app.py:20);parse (json.py:5) 6\n"
        "main (app.py:10);handle (app.py:21);parse (json.py:7) 2\n"
        "main (app.py:10);write (io.py:3) 2\n"
    )
    samples, frames = summarize(raw, limit=2)
    assert samples == 10
    assert [(f.function, f.self_percent, f.total_percent) for f in frames] == [
        ("parse (json.py)", 80.0, 80.0),
        ("write (io.py)", 20.0, 20.0),
    ]


def test_a_missing_optional_dependency_says_how_to_install() -> None:
    with pytest.raises(MissingDependency, match=r"pip install 'minimq\[bench\]'"):
        require("minimq_bench_no_such_module", "no-such-package")


def test_an_unavailable_peer_is_skipped_with_its_reason() -> None:
    class Unavailable(RedisPeer):
        def unavailable_reason(self) -> str | None:
            return "redis-server not found"

    runner = Runner([Unavailable(Durability.STRONGEST, "always")], QUICK)
    assert runner.peers == []
    assert runner.results.notes == [
        "Redis Streams (appendfsync always) skipped: redis-server not found."
    ]


def test_kafka_rows_stand_beside_the_http_batch_rows_or_say_why_not() -> None:
    results = synthetic_results()
    results.add("strongest", "MiniMQ", "produce_batched_cpu", 2.5, 200_000)
    results.add("strongest", "MiniMQ", "kafka_produce", 900_000.0, 200_000)
    results.add("strongest", "MiniMQ", "kafka_produce_cpu", 0.35, 200_000)
    for key in ("kafka_consume", "kafka_consume_cpu"):
        results.mark_not_run("strongest", "MiniMQ", key, "confluent-kafka not installed")
    lines = render(results, [], "minimq bench", "").splitlines()
    rows = [line for line in lines if line.startswith(("| 2", "| 4"))]
    assert [row.split(" | ")[0] for row in rows] == [
        "| 2. Batched produce (1,000 per call)",
        "| 2. Batched produce: broker CPU per message",
        "| 2k. Kafka produce (confluent-kafka, acks=all, linger 5 ms, 1 MiB batches)",
        "| 2k. Kafka produce: broker CPU per message",
        "| 4. Consume in batches of 1,000",
        "| 4k. Kafka consume (confluent-kafka, consume() of up to 100,000)",
        "| 4k. Kafka consume: broker CPU per message",
    ]
    assert "| µs/msg ↓ | 0.35 | - | - |" in rows[3]
    assert "| 900,000 | - | - |" in rows[2]
    assert "| not run: confluent-kafka not installed | - | - |" in rows[5]
