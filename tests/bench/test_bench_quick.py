"""``minimq bench --quick`` end to end: real brokers, real clients, a complete report.

No timing assertions: the smoke run checks that every broker that can run here
produced a number for every workload, that MiniMQ's Kafka rows (confluent-kafka
on its Kafka port) have a positive rate and broker CPU per message, that the
report, its charts and (with py-spy installed) the profiles were written, and
that every server the benchmark started is gone afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from minimq.bench.kafka_workloads import unavailable_reason as kafka_unavailable
from minimq.bench.peers import all_peers
from minimq.bench.profiling import py_spy_binary
from minimq.bench.rawhttp import wrk_binary
from minimq.bench.results import KAFKA_METRICS, all_metrics, cpu_metric
from minimq.bench.runner import PROFILED
from minimq.bench.settings import QUICK

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KAFKA_TITLES = {title for m in KAFKA_METRICS for title in (m.title, cpu_metric(m).title)}


def table_rows_by_header(report: str, header_prefix: str) -> list[list[dict[str, str]]]:
    """Each markdown table whose header starts with ``header_prefix``, as rows of dicts."""
    tables: list[list[dict[str, str]]] = []
    lines = report.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith(header_prefix):
            continue
        names = [cell.strip() for cell in line.strip("|").split("|")]
        rows = []
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            rows.append(
                dict(zip(names, (c.strip() for c in row.strip("|").split("|")), strict=True))
            )
        tables.append(rows)
    return tables


def test_quick_bench_writes_the_report_and_cleans_up(tmp_path: Path) -> None:
    # A private TMPDIR: the servers' temp directories must all be gone afterwards.
    server_tmp = tmp_path / "tmp"
    server_tmp.mkdir()
    output = tmp_path / "docs" / "benchmarks.md"
    (output.parent).mkdir(parents=True)
    output.write_text(
        "old\n<!-- analysis:start (kept when the report is regenerated) -->\n"
        "Profile notes.\n<!-- analysis:end -->\n"
    )

    completed = subprocess.run(
        [sys.executable, "-m", "minimq", "bench", "--quick", "--profile", "--no-progress",
         "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "TMPDIR": str(server_tmp)},
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr
    report = output.read_text()
    assert "## Targets" in report
    assert "Profile notes." in report  # the hand-written analysis survives regeneration
    runnable = [peer for peer in all_peers() if peer.unavailable_reason() is None]
    assert any(peer.broker == "MiniMQ" for peer in runnable)
    for peer in all_peers():
        if peer.unavailable_reason() is not None:
            assert f"{peer.label} skipped" in report
    tables = table_rows_by_header(report, "| Workload |")
    assert len(tables) == 2  # one table per durability level
    titles = {metric.title for metric in all_metrics(QUICK)}
    if wrk_binary() is None:
        titles = {title for title in titles if "wrk" not in title}
    for level, rows in zip(("strongest", "defaults"), tables, strict=True):
        assert {row["Workload"] for row in rows} == titles  # every workload has its row
        expected = {peer.broker for peer in runnable if peer.durability.value == level}
        for row in rows:
            if row["Workload"] in KAFKA_TITLES:
                assert_kafka_row(row)
                continue
            if row["Workload"].startswith(("1b.", "3b.")):
                continue  # wrk rows exist for MiniMQ only
            for broker in expected:
                # every broker has a number (or "lost" for a late message) in every row
                value = row[broker].split(" ")[0].replace(",", "").replace(".", "")
                assert value.isdigit() or value == "lost", (broker, row)
    assert "| 10,000 |" in report  # the cost-growth table reached its largest quick size
    for name in ("bench-throughput.png", "bench-latency.png", "bench-growth.png"):
        image = output.parent / "img" / name
        assert image.read_bytes().startswith(PNG_MAGIC)
        assert f"(img/{name})" in report
    if py_spy_binary() is not None:
        profiles = report.split("## Profiles (py-spy)", 1)[1].split("\n## ", 1)[0]
        for workload in PROFILED:
            assert f"**{workload}, broker**" in profiles
            assert f"**{workload}, benchmark client**" in profiles
    assert list(server_tmp.glob("minimq-bench-*")) == []  # servers stopped, directories removed
    if kafka_unavailable() is not None:
        pytest.skip("NOT RUN: the Kafka rows (confluent-kafka not installed; reported as not run)")


def assert_kafka_row(row: dict[str, str]) -> None:
    """MiniMQ's column holds a positive rate or CPU per message, or says why it did not run."""
    reason = kafka_unavailable()
    if reason is not None:
        assert row["MiniMQ"] == f"not run: {reason}", row
        return
    value = row["MiniMQ"].split(" ")[0].replace(",", "")
    assert float(value) > 0, row  # a rate, or broker CPU per message, that was measured
    for broker, cell in row.items():
        if broker.startswith(("NATS", "Redis", "MiniMQ (aiohttp)")):
            assert cell == "-", row  # the Kafka rows are MiniMQ's own
