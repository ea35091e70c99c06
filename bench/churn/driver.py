"""One churn run: brokers, producers, monitor, churning members, drain, final state.

:func:`run_churn` does, in order:

1. start the brokers (:func:`~.brokers.start_brokers`, 127.0.0.1, free ports, a
   short ``--session-timeout-ms`` so a pause beyond it stays short) on
   ``run_dir``: one disk broker (``--fsync always``), or with
   ``ChurnSettings.gateways`` > 0 that many gateways over a real 3-node
   JetStream cluster, the members, producers and monitor spread over them;
2. create a 6-partition topic, start the producer threads and the monitor;
3. play the seeded :func:`~.schedule.churn_schedule` for ``seconds`` against
   real member processes (:class:`~.fleet.MemberFleet`);
4. stop the producers, wake the paused members and stop every member
   (SIGTERM, SIGKILL after a timeout);
5. drain: two clean members consume until every partition's lag is 0, then
   leave; wait for the group to be empty (killed members expire after the
   session timeout) and record the final ``describe_group``;
6. stop everything and judge the histories with :func:`~.checker.check_run`.

Driver history (``driver.jsonl``, besides the fleet's actions): ``setup``
(urls, gateways, group, topic, partitions, mode, seed), ``churn-end``, ``drain-start``,
``drain-done``, ``harness-problem`` (problem), and ``final`` (members,
partitions, offsets ``[[partition, committed, end, lag], ...]``).

Every process started here is stopped by PID in a ``finally``, also when the
run fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.churn.brokers import start_brokers, urls_for
from bench.churn.checker import ChurnReport, RunHistory, check_run
from bench.churn.fleet import MemberFleet
from bench.churn.history import HistoryWriter
from bench.churn.member import COMMIT_TRUE
from bench.churn.monitor import GroupMonitor, offsets_of
from bench.churn.producers import ProducerThreads
from bench.churn.schedule import ChurnStep, churn_schedule

from minimq.client import Client, GroupInfo
from minimq.errors import MiniMQError

TOPIC = "churn"
PARTITIONS = 6
MEMBERS = 8
DRAIN_MEMBERS = ("d0", "d1")


@dataclass(frozen=True)
class ChurnSettings:
    mode: str = COMMIT_TRUE
    seconds: float = 150.0
    seed: int = 1
    session_timeout_ms: int = 2000
    records_per_second: float = 100.0
    producers: int = 2
    skip_commit_probability: float = 0.3
    stop_timeout_s: float = 15.0
    drain_timeout_s: float = 60.0
    # 0: one disk broker; N: N gateways over a 3-node JetStream cluster.
    gateways: int = 0

    @property
    def group(self) -> str:
        return f"churn-{self.mode}"

    @property
    def pause_s(self) -> tuple[float, float]:
        """Pauses last 1.5 to 2.5 session timeouts: long enough to be expired, not forever."""
        timeout_s = self.session_timeout_ms / 1000
        return 1.5 * timeout_s, 2.5 * timeout_s


def run_churn(run_dir: Path, settings: ChurnSettings) -> ChurnReport:
    """Run one mode on a fresh ``run_dir`` (see the module docstring) and judge it."""
    run_dir.mkdir(parents=True)
    with contextlib.ExitStack() as cleanup:
        # Callbacks run last-registered first, each even if an earlier one raised.
        driver = cleanup.enter_context(HistoryWriter(run_dir / "driver.jsonl"))
        urls = start_brokers(
            run_dir,
            gateways=settings.gateways,
            session_timeout_ms=settings.session_timeout_ms,
            cleanup=cleanup,
        )
        producers_log = cleanup.enter_context(HistoryWriter(run_dir / "produced.jsonl"))
        monitor_log = cleanup.enter_context(HistoryWriter(run_dir / "monitor.jsonl"))
        client = cleanup.enter_context(Client(urls))
        client.create_topic(TOPIC, partitions=PARTITIONS)
        driver.write(
            "setup",
            urls=urls,
            gateways=settings.gateways,
            group=settings.group,
            topic=TOPIC,
            partitions=PARTITIONS,
            mode=settings.mode,
            seed=settings.seed,
        )
        producers = ProducerThreads(
            urls,
            TOPIC,
            producers_log,
            count=settings.producers,
            records_per_second=settings.records_per_second,
            seed=settings.seed,
        ).start()
        cleanup.callback(producers.stop)
        # Through the last gateway: producer 0 and member 0 start on the first.
        monitor_urls = urls_for(len(urls) - 1, urls)
        monitor = GroupMonitor(monitor_urls, settings.group, TOPIC, monitor_log).start()
        cleanup.callback(monitor.stop)
        fleet = MemberFleet(run_dir, driver, urls, _member_args(settings), seed=settings.seed)
        cleanup.callback(fleet.kill_all)
        schedule = churn_schedule(
            settings.seed, settings.seconds, members=MEMBERS, pause_s=settings.pause_s
        )
        _play(fleet, schedule, settings.seconds)
        driver.write("churn-end")
        producers.stop()
        fleet.stop_all(settings.stop_timeout_s)
        _drain(client, fleet, driver, settings)
    return check_run(RunHistory.load(run_dir, settings.mode))


def _member_args(settings: ChurnSettings) -> list[str]:
    return [
        "--group",
        settings.group,
        "--topic",
        TOPIC,
        "--mode",
        settings.mode,
        "--skip-commit-probability",
        str(settings.skip_commit_probability),
        # Heartbeats at a fifth of the session timeout: a live member never expires.
        "--heartbeat-interval-ms",
        str(settings.session_timeout_ms // 5),
    ]


def _play(fleet: MemberFleet, steps: list[ChurnStep], seconds: float) -> None:
    """Apply each step at its time; steps due after ``seconds`` (late resumes) are skipped.

    The clock starts once the first members run (starting Python takes a
    moment), so the first churn steps meet members that are consuming.
    """
    for step in steps:
        if step.at_s == 0:
            fleet.spawn(step.member)
    fleet.wait_started()
    started = time.monotonic()
    actions = {
        "join": fleet.spawn,
        "leave": fleet.leave,
        "kill": fleet.kill,
        "pause": fleet.pause,
        "resume": fleet.resume,
    }
    for step in (step for step in steps if step.at_s > 0):
        if step.at_s >= seconds:
            break
        delay = started + step.at_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        fleet.reap()
        actions[step.action](step.member)
    remaining = started + seconds - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    fleet.reap()


def _drain(
    client: Client, fleet: MemberFleet, driver: HistoryWriter, settings: ChurnSettings
) -> None:
    """Two clean members consume to lag 0 and leave; then the final state is recorded."""
    driver.write("drain-start")
    for name in DRAIN_MEMBERS:
        fleet.spawn(name, ("--skip-commit-probability", "0"))
    if _wait_until(lambda: _caught_up(_describe(client, settings.group)), settings.drain_timeout_s):
        driver.write("drain-done")
    else:
        driver.write(
            "harness-problem",
            problem=f"the drain did not reach lag 0 within {settings.drain_timeout_s}s",
        )
    fleet.stop_all(settings.stop_timeout_s)
    # Killed members are only dropped once their session times out.
    _wait_until(
        lambda: _has_no_members(_describe(client, settings.group)),
        3 * settings.session_timeout_ms / 1000,
    )
    info = _describe(client, settings.group)
    for problem in fleet.unexpected_exits:
        driver.write("harness-problem", problem=problem)
    driver.write(
        "final",
        members=len(info.members) if info else None,
        partitions=PARTITIONS,
        offsets=offsets_of(info, TOPIC) if info else [],
    )


def _wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Whether ``condition`` became true within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True


def _has_no_members(info: GroupInfo | None) -> bool:
    return info is not None and not info.members


def _describe(client: Client, group: str) -> GroupInfo | None:
    try:
        return client.describe_group(group)
    except MiniMQError:
        return None


def _caught_up(info: GroupInfo | None) -> bool:
    if info is None:
        return False
    offsets = offsets_of(info, TOPIC)
    return len(offsets) == PARTITIONS and all(committed == end for _, committed, end, _ in offsets)
