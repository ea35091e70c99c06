"""Crash loop: kill -9 a real broker at random moments under load, then judge the log.

Four producer threads and two members of one consumer group run against a
broker with ``fsync=always`` while the broker is SIGKILLed ``kills`` times at
random moments and restarted on the same data directory.  After each restart,
before any new commit can be sent, the group's committed offsets are checked
against the ledger; at the end the producers stop, the consumers drain the
topic, and the checker reads every partition from offset 0.

    python -m bench.reliability.crash_loop [--kills 20] [--seed 1]

Exit status 0 when nothing acknowledged was lost, no commit went backwards,
every acknowledged message was delivered, and every restart served within the
recovery bound (``--max-recovery-s``, default 2 s).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from bench.reliability.ledger import Ledger, Verdict, read_committed, read_topic
from bench.reliability.workload import Workload, WorkloadStats
from tests.support.processes import BrokerProcess

TOPIC = "crash-loop"
GROUP = "crash-loop-group"
PARTITIONS = 4


@dataclass
class CrashLoopResult:
    verdict: Verdict
    stats: WorkloadStats
    recovery_s: list[float] = field(default_factory=list)
    commit_problems: list[str] = field(default_factory=list)
    undelivered: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.commit_problems and not self.undelivered

    def summary(self) -> str:
        recovery = (
            f"restart-to-serving max {max(self.recovery_s):.2f}s, "
            f"median {statistics.median(self.recovery_s):.2f}s over {len(self.recovery_s)} kills"
            if self.recovery_s
            else "no kills"
        )
        lines = [
            self.verdict.summary(),
            recovery,
            f"produce requests answered {self.stats.produce_requests}, unknown outcome "
            f"{self.stats.produce_unknown}, refused {self.stats.produce_refused}; "
            f"commits {self.stats.commits} (+{self.stats.commit_unknown} unknown); "
            f"records delivered to consumers {self.stats.fetched}",
        ]
        lines += [f"commit: {problem}" for problem in self.commit_problems]
        if self.undelivered:
            lines.append(f"{len(self.undelivered)} acknowledged messages never delivered")
        return "\n".join(lines)


def run_crash_loop(
    data_dir: Path,
    kills: int,
    *,
    seed: int = 0,
    uptime_s: tuple[float, float] = (0.3, 1.5),
    drain_timeout_s: float = 90.0,
) -> CrashLoopResult:
    """Run the loop on a fresh ``data_dir`` (see the module docstring)."""
    rng = random.Random(seed)
    broker = BrokerProcess(data_dir, ["--fsync", "always", "--log-level", "WARNING"])
    broker.start()
    ledger = Ledger()
    workload = Workload(broker.url, TOPIC, ledger, group=GROUP, seed=seed)
    recovery: list[float] = []
    commit_problems: list[str] = []
    try:
        httpx.post(
            f"{broker.url}/v1/topics", json={"name": TOPIC, "partitions": PARTITIONS}
        ).raise_for_status()
        workload.start()
        for _ in range(kills):
            time.sleep(rng.uniform(*uptime_s))
            broker.kill()
            # Holding the commit lock: no consumer can commit until the check is done.
            with workload.commit_lock:
                started = time.monotonic()
                broker.start()
                recovery.append(time.monotonic() - started)
                commit_problems += ledger.check_commits(GROUP, read_committed(broker.url, GROUP))
        workload.stop_producing()
        workload.drain(PARTITIONS, drain_timeout_s)
        workload.finish()
        verdict = ledger.check_log(read_topic(broker.url, TOPIC))
        undelivered = ledger.acknowledged_ids() - workload.stats.delivered
    finally:
        workload.finish()
        broker.stop()
    return CrashLoopResult(verdict, workload.stats, recovery, commit_problems, undelivered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-recovery-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="minimq-crash-loop-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        result = run_crash_loop(data_dir, args.kills, seed=args.seed)
    print(result.summary())
    slow = [s for s in result.recovery_s if s > args.max_recovery_s]
    if slow:
        print(f"FAILED: {len(slow)} restarts took longer than {args.max_recovery_s}s: {slow}")
    return 0 if result.ok and not slow else 1


if __name__ == "__main__":
    sys.exit(main())
