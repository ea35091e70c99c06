"""Soak test (``make soak``): mixed load at ~70% of maximum throughput for minutes.

Starts a broker (fsync=always) on 127.0.0.1 with a temporary data directory,
measures the maximum rate of the workload (4 producer threads sending
batches of 1-5 uniquely identified records while 2 consumer-group members
fetch and commit), then runs the same workload paced at ``--load`` (0.7) of
that rate for ``--minutes`` (5).  Every ``--sample-s`` seconds it prints the broker's
RSS, throughput and error counts.  At the end the producers stop, the consumers
drain the topic and the checker reads every partition from offset 0.

Passes (exit 0) when there were no errors, the checker found nothing, every
acknowledged message was delivered, and RSS stayed flat: the median of the
last quarter of samples is within ``--rss-slack-mib`` of the median of the
second quarter (the first quarter is warm-up).

    python -m bench.soak [--minutes 5] [--load 0.7]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this directory would come first on sys.path and bench/http.py
# would shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import httpx  # noqa: E402
import psutil  # noqa: E402
from bench.reliability.ledger import Ledger, read_topic  # noqa: E402
from bench.reliability.workload import Workload  # noqa: E402
from tests.support.processes import BrokerProcess  # noqa: E402

TOPIC = "soak"
GROUP = "soak-group"
PARTITIONS = 4
MIB = 1 << 20


@dataclass
class Sample:
    elapsed_s: float
    rss: int
    acknowledged: int
    delivered: int
    errors: int


@dataclass
class SoakReport:
    max_rate: float
    target_rate: float
    samples: list[Sample] = field(default_factory=list)

    def rss_growth(self) -> float:
        """Median RSS of the last quarter minus that of the second quarter (bytes)."""
        quarter = max(len(self.samples) // 4, 1)
        settled = [s.rss for s in self.samples[quarter : 2 * quarter]] or [self.samples[0].rss]
        last = [s.rss for s in self.samples[-quarter:]]
        return statistics.median(last) - statistics.median(settled)


def measure_max_rate(url: str, seconds: float) -> float:
    """Records per second the unpaced workload (consumers included) acknowledges."""
    httpx.post(
        f"{url}/v1/topics", json={"name": "calibrate", "partitions": PARTITIONS}
    ).raise_for_status()
    ledger = Ledger()
    workload = Workload(url, "calibrate", ledger, group="calibrate").start()
    time.sleep(seconds)
    workload.finish()
    return ledger.acknowledged_count / seconds


def errors(workload: Workload) -> int:
    stats = workload.stats
    return stats.produce_refused + stats.produce_unknown + stats.commit_unknown


def run(args: argparse.Namespace, data_dir: Path) -> int:
    broker = BrokerProcess(data_dir, ["--fsync", "always", "--log-level", "WARNING"])
    broker.start()
    try:
        assert broker.process is not None
        process = psutil.Process(broker.process.pid)
        httpx.post(
            f"{broker.url}/v1/topics", json={"name": TOPIC, "partitions": PARTITIONS}
        ).raise_for_status()
        max_rate = measure_max_rate(broker.url, args.calibrate_s)
        report = SoakReport(max_rate, max_rate * args.load)
        print(
            f"max produce rate {max_rate:.0f} records/s; soaking at {report.target_rate:.0f}/s "
            f"({args.load:.0%}) for {args.minutes:g} min"
        )
        print(f"{'time':>7} {'RSS MiB':>8} {'acked':>9} {'delivered':>10} {'errors':>7}")
        ledger = Ledger()
        workload = Workload(
            broker.url, TOPIC, ledger, group=GROUP, records_per_second=report.target_rate
        ).start()
        started = time.monotonic()
        try:
            while (elapsed := time.monotonic() - started) < args.minutes * 60:
                time.sleep(min(args.sample_s, max(args.minutes * 60 - elapsed, 0.1)))
                sample = Sample(
                    time.monotonic() - started,
                    process.memory_info().rss,
                    ledger.acknowledged_count,
                    workload.stats.fetched,
                    errors(workload),
                )
                report.samples.append(sample)
                print(
                    f"{sample.elapsed_s:6.0f}s {sample.rss / MIB:8.1f} {sample.acknowledged:9d} "
                    f"{sample.delivered:10d} {sample.errors:7d}",
                    flush=True,
                )
            workload.stop_producing()
            workload.drain(PARTITIONS, timeout=120)
        finally:
            workload.finish()
        verdict = ledger.check_log(read_topic(broker.url, TOPIC))
        undelivered = ledger.acknowledged_ids() - workload.stats.delivered
    finally:
        broker.stop()
    growth = report.rss_growth()
    failures = []
    if errors(workload):
        failures.append(f"{errors(workload)} errors")
    if not verdict.ok:
        failures.append("checker found problems")
    if undelivered:
        failures.append(f"{len(undelivered)} acknowledged messages never delivered")
    if growth > args.rss_slack_mib * MIB:
        failures.append(f"RSS grew {growth / MIB:.1f} MiB")
    print(verdict.summary())
    last = report.samples[-1]
    achieved = last.acknowledged / last.elapsed_s
    print(
        f"achieved {achieved:.0f} acknowledged records/s on average "
        f"({achieved / report.max_rate:.0%} of the measured maximum)"
    )
    print(
        f"RSS {report.samples[0].rss / MIB:.1f} -> {report.samples[-1].rss / MIB:.1f} MiB "
        f"(settled-to-end growth {growth / MIB:+.1f} MiB); errors {errors(workload)}; "
        f"{'PASS' if not failures else 'FAIL: ' + ', '.join(failures)}"
    )
    return 0 if not failures else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--load", type=float, default=0.7, help="fraction of the max rate")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--calibrate-s", type=float, default=10.0)
    parser.add_argument("--rss-slack-mib", type=float, default=16.0)
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        return run(args, args.data_dir)
    with tempfile.TemporaryDirectory(prefix="minimq-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        return run(args, data_dir)


if __name__ == "__main__":
    sys.exit(main())
