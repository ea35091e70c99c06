"""``minimq bench --cluster --quick`` end to end, and where its section goes in the report.

The end-to-end test starts a real 3-node NATS cluster and two gateways (small counts) and
checks that the section has every row with a number in it, that the rest of the report is
kept, and that every process and directory the benchmark made is gone afterwards. No timing
assertions. A missing ``nats-server`` fails the test (the cluster extra is a dev dependency).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from minimq.bench.cluster.section import LATENCY_TITLES, TITLE, WORKLOAD_TITLES
from minimq.bench.cluster.splice import SECTION_END, SECTION_START, carry_over, splice
from minimq.bench.report import ANALYSIS_END, ANALYSIS_START, write_report
from minimq.bench.results import Results
from minimq.bench.settings import QUICK
from tests.bench.test_bench_quick import table_rows_by_header

OLD_REPORT = (
    f"# Benchmarks\n\nPeer tables.\n\n## Analysis\n\n{ANALYSIS_START}\nHand-written notes.\n"
    f"{ANALYSIS_END}\n"
)
THROUGHPUT_HEADER = "| workload | gateways / direct connections |"
LATENCY_HEADER = "| path at 1,000 msgs/s |"


def number(cell: str) -> float:
    """The median of a cell such as ``12,345 (11,000-13,000)`` or ``0.91x``."""
    return float(cell.split(" ", maxsplit=1)[0].rstrip("x").replace(",", ""))


def processes_under(directory: Path) -> list[str]:
    """Command lines of live processes that mention ``directory`` (servers left running)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info.get("cmdline") or [])
        if str(directory) in cmdline:
            found.append(cmdline)
    return found


def test_cluster_quick_bench_writes_every_row_and_cleans_up(tmp_path: Path) -> None:
    server_tmp = tmp_path / "tmp"
    server_tmp.mkdir()
    output = tmp_path / "docs" / "benchmarks.md"
    output.parent.mkdir()
    output.write_text(OLD_REPORT)

    completed = subprocess.run(
        [sys.executable, "-m", "minimq", "bench", "--cluster", "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "TMPDIR": str(server_tmp)},
    )  # fmt: skip

    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = output.read_text()
    assert report.startswith("# Benchmarks\n\nPeer tables.")  # the rest of the report is kept
    assert report.index(SECTION_END) < report.index("## Analysis")
    assert "Hand-written notes." in report
    assert TITLE in report
    assert "`minimq bench --cluster --quick`" in report
    [throughput] = table_rows_by_header(report, THROUGHPUT_HEADER)
    rows = {(row["workload"], row["gateways / direct connections"]): row for row in throughput}
    assert set(rows) == {(title, n) for title in WORKLOAD_TITLES.values() for n in ("1", "2")}
    for row in rows.values():
        assert number(row["through the gateways, msgs/s ↑"]) > 0, row
        assert number(row["direct nats-py, msgs/s ↑"]) > 0, row
        assert row["gateway / direct"].endswith("x"), row
        assert number(row["gateway / direct"]) > 0, row
        assert row["goal ≥ 0.8x"] in {"yes", "**no**"}, row
        assert row["load average (1 min)"] != "-", row
    [latency] = table_rows_by_header(report, LATENCY_HEADER)
    assert {row[LATENCY_HEADER.strip("| ")] for row in latency} == set(LATENCY_TITLES.values())
    for row in latency:
        assert row["lost"] == "0", row
        assert number(row["p99 ms ↓"]) > 0, row
    assert "### Failures in this run" not in report
    assert list(server_tmp.iterdir()) == []  # nodes and gateways stopped, directories removed
    assert processes_under(server_tmp) == []
    # What it printed while measuring: the figures with the load average.
    assert "load " in completed.stdout
    assert "direct nats-py connection(s)" in completed.stdout


def test_cluster_takes_none_of_the_peer_options(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "minimq", "bench", "--cluster", "--profile",
         "--output", str(tmp_path / "report.md")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "--cluster takes no" in completed.stderr
    assert not (tmp_path / "report.md").exists()


def section(body: str) -> str:
    return f"{SECTION_START}\n{body}\n{SECTION_END}"


def test_the_section_goes_before_the_analysis_then_replaces_itself() -> None:
    first = splice(OLD_REPORT, section("one"))
    assert first.index("one") < first.index("## Analysis") < first.index("Hand-written")
    second = splice(first, section("two"))
    assert "one" not in second
    assert second.count(SECTION_START) == 1
    assert second.replace("two", "one") == first


def test_the_section_is_appended_without_an_analysis_and_written_alone_into_nothing() -> None:
    assert splice("# Report\n", section("x")) == f"# Report\n\n{section('x')}\n"
    assert splice("", section("x")) == f"{section('x')}\n"


def test_regenerating_the_peer_report_keeps_the_cluster_section(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    output.write_text(splice(OLD_REPORT, section("cluster figures")))
    write_report(Results(QUICK), output, [], "minimq bench")
    report = output.read_text()
    assert "cluster figures" in report
    assert "Hand-written notes." in report  # the analysis, as before
    assert report.index("cluster figures") < report.index("## Analysis")
    assert carry_over(tmp_path / "missing.md", "text") == "text"
