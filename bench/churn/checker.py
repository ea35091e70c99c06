"""The churn checker: judges a run's histories, offline, after the run.

Input is a :class:`RunHistory` (every member's events, the producers'
acknowledgements, the monitor's samples, the driver's actions and final
state; see :mod:`.member` and :mod:`.history` for the events).  The checks:

1. **One holder per generation**: no (partition, offset) is handed to two
   members in the same generation, and every delivery names its generation.
2. **No gaps**: every acknowledged (partition, offset) is delivered at least
   once.  Only in commit=true mode (at-most-once by definition) an offset may
   be missing when a member was SIGKILLed with a commit=true fetch in flight
   (``fetch-sent`` with no answer logged) and it owned the offset's partition
   in that fetch's generation, at or after where it stood there (its last
   answer's position, else the offset committed before the fetch) and within
   the fetch's limit; those are counted as *lost with a killed member*.
3. **Redelivered only if uncommitted**: a record delivered again was not
   covered by a commit acknowledged (``commit-ok``, or a commit=true fetch
   answer) before the redelivering fetch was sent.  Each redelivery is
   attributed to what happened to the member that had the record before:
   killed, paused, left, or nothing (a rebalance with that owner alive).
4. **Commits never go backwards**: each partition's committed offset in the
   monitor's samples is non-decreasing, and so are the acknowledged commits
   of each partition taken in generation order (time order within one).
5. **Drained**: at the end the group has no members, every member process
   has exited, and every partition's committed offset is its end (lag 0).
6. **Harness**: member processes exited only when told to, the drain
   finished in time.  Not a broker property, but without it the other checks
   may be judging a run that did not happen as scheduled.

Every function takes plain events, so tests can feed hand-made histories.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.churn.history import Event, read_history

COMMIT_TRUE = "commit-true"

Position = tuple[int, int]  # (partition, offset)

SHOWN_PROBLEMS = 10


# --------------------------------------------------------------------- input


@dataclass
class RunHistory:
    """Everything one run wrote, as events (see :mod:`.history`)."""

    mode: str
    members: dict[str, list[Event]]
    produced: list[Event]
    monitor: list[Event]
    driver: list[Event]

    @classmethod
    def load(cls, run_dir: Path, mode: str) -> RunHistory:
        members_dir = run_dir / "members"
        return cls(
            mode=mode,
            members={path.stem: read_history(path) for path in sorted(members_dir.glob("*.jsonl"))},
            produced=read_history(run_dir / "produced.jsonl"),
            monitor=read_history(run_dir / "monitor.jsonl"),
            driver=read_history(run_dir / "driver.jsonl"),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    member: str  # the process
    member_id: str  # the broker's name for it at the time
    generation: int | None
    partition: int
    offset: int
    sent: float  # when the fetch that returned it was sent
    t: float  # when its answer was logged


@dataclass(frozen=True, slots=True)
class AcknowledgedCommit:
    member: str
    generation: int | None
    t: float
    offsets: dict[int, int]  # partition -> next offset to read
    how: str  # "commit-ok" or "fetch-answer" (commit=true)


@dataclass(frozen=True, slots=True)
class UnansweredFetch:
    member: str
    member_id: str
    generation: int | None
    assignment: frozenset[int]
    limit: int | None
    commit: bool
    sent: float
    known_positions: dict[int, int]  # from this member's earlier answers in the generation


def deliveries_of(history: RunHistory) -> list[Delivery]:
    return [
        Delivery(
            name,
            event["member_id"],
            event.get("generation"),
            partition,
            offset,
            event["sent"],
            event["t"],
        )
        for name, events in history.members.items()
        for event in events
        if event["event"] == "fetch-answer"
        for partition, offset in event["records"]
    ]


def acknowledged_commits_of(history: RunHistory) -> list[AcknowledgedCommit]:
    commits = []
    for name, events in history.members.items():
        for event in events:
            if event["event"] == "commit-ok":
                offsets = event["offsets"]
            elif event["event"] == "fetch-answer" and event.get("commit"):
                offsets = event["positions"]
            else:
                continue
            commits.append(
                AcknowledgedCommit(
                    name, event.get("generation"), event["t"], dict(offsets), event["event"]
                )
            )
    return commits


def unanswered_fetches_of(history: RunHistory) -> list[UnansweredFetch]:
    """Fetches whose ``fetch-sent`` is followed by no outcome in the member's history."""
    found = []
    for name, events in history.members.items():
        settled = {
            e["seq"]
            for e in events
            if e["event"] in {"fetch-answer", "fetch-refused", "fetch-unanswered"}
        }
        positions: dict[tuple[str, int | None], dict[int, int]] = defaultdict(dict)
        for event in events:
            key = (event.get("member_id", ""), event.get("generation"))
            if event["event"] == "fetch-answer":
                positions[key].update(dict(event["positions"]))
            elif event["event"] == "fetch-sent" and event["seq"] not in settled:
                found.append(
                    UnansweredFetch(
                        name,
                        event["member_id"],
                        event.get("generation"),
                        frozenset(event.get("assignment", ())),
                        event.get("limit"),
                        bool(event.get("commit")),
                        event["t"],
                        dict(positions[key]),
                    )
                )
    return found


def driver_times(history: RunHistory, action: str) -> dict[str, list[float]]:
    """member -> times of the driver's ``action`` events on it."""
    times: dict[str, list[float]] = defaultdict(list)
    for event in history.driver:
        if event["event"] == action:
            times[event["member"]].append(event["t"])
    return times


def happenings_of(history: RunHistory) -> Happenings:
    """When each member was killed, paused or told to leave, or saw a new generation."""
    happenings: Happenings = defaultdict(lambda: defaultdict(list))
    for action, cause in (("kill", "killed member"), ("pause", "paused member")):
        for member, times in driver_times(history, action).items():
            happenings[member][cause] += times
    for member, times in driver_times(history, "leave").items():
        happenings[member]["left member"] += times
    for name, events in history.members.items():
        happenings[name]["rebalance, owner alive"] += [
            e["t"] for e in events if e["event"] in {"join", "fetch-refused", "commit-refused"}
        ]
    return happenings


def produced_positions(history: RunHistory) -> set[Position]:
    return {
        (partition, offset)
        for event in history.produced
        if event["event"] == "produced"
        for partition, offset in event["records"]
    }


# --------------------------------------------------------------------- output


@dataclass
class CheckResult:
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = f"{'PASS' if self.ok else 'FAIL'}  {self.name}"
        if self.ok:
            return head
        shown = [f"      {problem}" for problem in self.problems[:SHOWN_PROBLEMS]]
        if len(self.problems) > SHOWN_PROBLEMS:
            shown.append(f"      ... and {len(self.problems) - SHOWN_PROBLEMS} more")
        return "\n".join([f"{head} ({len(self.problems)} problems)", *shown])


DUPLICATE_CAUSES = ("killed member", "paused member", "left member", "rebalance, owner alive")

# member -> cause -> times it happened to that member (see _cause)
Happenings = dict[str, dict[str, list[float]]]


@dataclass
class Figures:
    produced: int = 0
    produce_failures: int = 0
    deliveries: int = 0
    distinct_delivered: int = 0
    generations: int = 0
    members_started: int = 0
    group_joins: int = 0
    leaves: int = 0
    kills: int = 0
    pauses: int = 0
    fetches_refused: Counter[str] = field(default_factory=Counter)
    commits_ok: int = 0
    commits_refused: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    same_member_same_generation: int = 0
    lost_with_killed_member: int = 0
    gaps: int = 0
    monitor_samples: int = 0

    def summary(self, mode: str) -> list[str]:
        duplicates = ", ".join(f"{cause} {self.duplicates[cause]}" for cause in DUPLICATE_CAUSES)
        lines = [
            f"produced (acknowledged) {self.produced}, produce failures {self.produce_failures}",
            f"deliveries {self.deliveries} ({self.distinct_delivered} distinct offsets)",
            f"generations {self.generations}; member processes {self.members_started}, "
            f"group joins {self.group_joins}, leaves {self.leaves}, kills {self.kills}, "
            f"pauses {self.pauses}",
            f"fetches refused {_counts(self.fetches_refused)}; commits ok {self.commits_ok}, "
            f"refused {_counts(self.commits_refused)}",
            f"duplicates {sum(self.duplicates.values())}: {duplicates} "
            f"(of which to the same member in one generation: "
            f"{self.same_member_same_generation})",
        ]
        if mode == COMMIT_TRUE:
            lines.append(
                "lost with a killed member's unanswered commit=true fetch "
                f"{self.lost_with_killed_member}"
            )
        lines += [f"gaps {self.gaps}", f"monitor samples {self.monitor_samples}"]
        return lines


def _counts(counter: Counter[str]) -> str:
    total = sum(counter.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{code} {n}' for code, n in counter.most_common())})"


@dataclass
class ChurnReport:
    mode: str
    figures: Figures
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def summary(self) -> str:
        lines = [f"== mode {self.mode}: {'PASS' if self.ok else 'FAIL'}"]
        lines += [f"  {line}" for line in self.figures.summary(self.mode)]
        lines += [f"  {check.summary()}" for check in self.checks]
        return "\n".join(lines)


# --------------------------------------------------------------------- checks


def check_one_holder_per_generation(deliveries: Iterable[Delivery]) -> CheckResult:
    result = CheckResult("1. no offset handed to two members in one generation")
    holders: dict[tuple[int, int, int], set[str]] = defaultdict(set)
    without_generation = 0
    for d in deliveries:
        if d.generation is None:
            without_generation += 1
            continue
        holders[(d.generation, d.partition, d.offset)].add(d.member_id)
    for (generation, partition, offset), members in sorted(holders.items()):
        if len(members) > 1:
            result.problems.append(
                f"generation {generation}: {partition}:{offset} handed to {sorted(members)}"
            )
    if without_generation:
        result.problems.append(f"{without_generation} deliveries name no generation")
    return result


def check_no_gaps(
    mode: str,
    produced: set[Position],
    deliveries: Iterable[Delivery],
    unanswered: Iterable[UnansweredFetch],
    killed: set[str],
    commits: Iterable[AcknowledgedCommit] = (),
) -> tuple[CheckResult, int]:
    """The check and how many missing offsets the killed-member rule explained."""
    result = CheckResult("2. no acknowledged offset skipped")
    missing = sorted(produced - {(d.partition, d.offset) for d in deliveries})
    lost_fetches = (
        sorted((u for u in unanswered if u.commit and u.member in killed), key=lambda u: u.sent)
        if mode == COMMIT_TRUE
        else []
    )
    committed = _committed_prefix_max(commits)
    # One fetch returns at most ``limit`` records: that many missing offsets it may explain.
    left_to_explain = [u.limit if u.limit is not None else len(missing) for u in lost_fetches]
    explained = 0
    for partition, offset in missing:
        for number, fetch in enumerate(lost_fetches):
            floor = _committed_by(committed, partition, fetch.sent)
            if left_to_explain[number] and _could_have_returned(fetch, partition, offset, floor):
                left_to_explain[number] -= 1
                explained += 1
                break
        else:
            result.problems.append(f"{partition}:{offset} acknowledged but never delivered")
    return result, explained


def _could_have_returned(
    fetch: UnansweredFetch, partition: int, offset: int, committed_before: int
) -> bool:
    """Whether ``fetch`` (its answer lost with its member) may have handed out the offset.

    Only from a partition its member owned, and not below where that member
    stood: its position from its last answer in the generation, exactly, else
    at least every commit acknowledged before the fetch was sent (a new owner
    starts from the committed offset, and no one else commits while it owns).
    """
    if partition not in fetch.assignment or offset < committed_before:
        return False
    start = fetch.known_positions.get(partition)
    if start is None:
        return True
    return start <= offset and (fetch.limit is None or offset < start + fetch.limit)


def _committed_by(
    committed: dict[int, tuple[list[float], list[int]]], partition: int, t: float
) -> int:
    """The highest offset of ``partition`` whose commit was acknowledged before ``t``."""
    times, offsets = committed.get(partition, ([], []))
    index = bisect.bisect_left(times, t)
    return offsets[index - 1] if index else -1


def check_redeliveries_uncommitted(
    deliveries: Iterable[Delivery],
    commits: Iterable[AcknowledgedCommit],
    happenings: Happenings,
) -> tuple[CheckResult, Counter[str], int]:
    """The check, the redeliveries by cause, and how many went to the same member twice
    in one generation."""
    result = CheckResult("3. records delivered again only if uncommitted")
    committed_by_partition = _committed_prefix_max(commits)
    by_position: dict[Position, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_position[(d.partition, d.offset)].append(d)
    causes: Counter[str] = Counter()
    same_member_same_generation = 0
    for (partition, offset), copies in sorted(by_position.items()):
        copies.sort(key=lambda d: d.t)
        for previous, again in itertools.pairwise(copies):
            if (previous.member_id, previous.generation) == (again.member_id, again.generation):
                same_member_same_generation += 1
            causes[_cause(previous, again, happenings)] += 1
            committed = _committed_by(committed_by_partition, partition, again.sent)
            if committed > offset:
                result.problems.append(
                    f"{partition}:{offset} delivered to {again.member} "
                    f"(generation {again.generation}, fetch sent at {again.sent:.3f}) after "
                    f"offset {committed} was committed and acknowledged; first delivered to "
                    f"{previous.member} (generation {previous.generation})"
                )
    return result, causes, same_member_same_generation


def _committed_prefix_max(
    commits: Iterable[AcknowledgedCommit],
) -> dict[int, tuple[list[float], list[int]]]:
    """partition -> (acknowledgement times, highest offset committed by then), time-sorted."""
    per_partition: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for commit in commits:
        for partition, offset in commit.offsets.items():
            per_partition[partition].append((commit.t, offset))
    out = {}
    for partition, entries in per_partition.items():
        entries.sort()
        highest, maxima = -1, []
        for _, offset in entries:
            highest = max(highest, offset)
            maxima.append(highest)
        out[partition] = ([t for t, _ in entries], maxima)
    return out


def _cause(previous: Delivery, again: Delivery, happenings: Happenings) -> str:
    """What happened first to the record's previous holder after it was handed the record.

    A holder that saw a new generation (rejoined, or was refused) lost its
    uncommitted records to that rebalance while alive, whatever happened to it later.
    """
    first = min(
        (
            (t, cause)
            for cause, times in happenings.get(previous.member, {}).items()
            for t in times
            if previous.t <= t <= again.sent
        ),
        default=(0.0, "rebalance, owner alive"),
    )
    return first[1]


def check_commits_monotonic(
    samples: Iterable[Event], commits: Iterable[AcknowledgedCommit]
) -> CheckResult:
    result = CheckResult("4. committed offsets never go backwards")
    sampled: dict[int, int] = {}  # partition -> highest committed offset sampled so far
    for sample in samples:
        for partition, committed, *_ in sample["offsets"]:
            highest = sampled.get(partition)
            if highest is not None and (committed is None or committed < highest):
                result.problems.append(
                    f"monitor at {sample['t']:.3f}: partition {partition} committed "
                    f"{committed} after {highest}"
                )
            if committed is not None:
                sampled[partition] = max(committed, highest or 0)
    ordered = sorted(
        (c for c in commits if c.generation is not None),
        key=lambda c: (c.generation, c.t),
    )
    highest_commit: dict[int, AcknowledgedCommit] = {}  # partition -> the commit of its highest
    for commit in ordered:
        for partition, offset in sorted(commit.offsets.items()):
            before = highest_commit.get(partition)
            if before is not None and offset < before.offsets[partition]:
                result.problems.append(
                    f"partition {partition}: {commit.member} committed {offset} in generation "
                    f"{commit.generation} ({commit.how} at {commit.t:.3f}) after "
                    f"{before.member} committed {before.offsets[partition]} in generation "
                    f"{before.generation} ({before.how} at {before.t:.3f})"
                )
            else:
                highest_commit[partition] = commit
    return result


def check_drained(history: RunHistory) -> CheckResult:
    result = CheckResult("5. after the churn: no members, every process stopped, lag 0")
    finals = [e for e in history.driver if e["event"] == "final"]
    if not finals:
        result.problems.append("no final describe_group was recorded")
        return result
    final = finals[-1]
    if final["members"] is None:
        result.problems.append("the final describe_group failed")
    elif final["members"]:
        result.problems.append(f"{final['members']} members still in the group")
    offsets = final["offsets"]
    if len(offsets) != final["partitions"]:
        result.problems.append(
            f"offsets for {len(offsets)} partitions, the topic has {final['partitions']}"
        )
    for partition, committed, end, lag in offsets:
        if lag or committed != end:
            result.problems.append(
                f"partition {partition}: committed {committed}, end {end}, lag {lag}"
            )
    spawned = {e["member"] for e in history.driver if e["event"] == "spawn"}
    exited = {e["member"] for e in history.driver if e["event"] == "exited"}
    if spawned - exited:
        result.problems.append(f"member processes not stopped: {sorted(spawned - exited)}")
    return result


def check_harness(history: RunHistory) -> CheckResult:
    result = CheckResult("6. harness: members stopped only when told to, drain in time")
    result.problems += [e["problem"] for e in history.driver if e["event"] == "harness-problem"]
    return result


# --------------------------------------------------------------------- all


def check_run(history: RunHistory) -> ChurnReport:
    deliveries = deliveries_of(history)
    commits = acknowledged_commits_of(history)
    killed = driver_times(history, "kill")
    produced = produced_positions(history)
    gaps, lost = check_no_gaps(
        history.mode, produced, deliveries, unanswered_fetches_of(history), set(killed), commits
    )
    redeliveries, causes, same_member = check_redeliveries_uncommitted(
        deliveries, commits, happenings_of(history)
    )
    checks = [
        check_one_holder_per_generation(deliveries),
        gaps,
        redeliveries,
        check_commits_monotonic((e for e in history.monitor if e["event"] == "sample"), commits),
        check_drained(history),
        check_harness(history),
    ]
    figures = _figures(history, deliveries, commits)
    figures.produced = len(produced)
    figures.duplicates = causes
    figures.same_member_same_generation = same_member
    figures.lost_with_killed_member = lost
    figures.gaps = len(gaps.problems)
    return ChurnReport(history.mode, figures, checks)


def _figures(
    history: RunHistory, deliveries: list[Delivery], commits: list[AcknowledgedCommit]
) -> Figures:
    member_events = [e for events in history.members.values() for e in events]
    # The churn's own actions; the stop and the drain that follow are not churn.
    end = next((e["t"] for e in history.driver if e["event"] == "churn-end"), float("inf"))
    driver_actions = Counter(e["event"] for e in history.driver if e["t"] < end)
    generations = {d.generation for d in deliveries} | {
        e.get("generation") for e in member_events if e["event"] == "join"
    }
    return Figures(
        produce_failures=sum(1 for e in history.produced if e["event"] == "produce-failed"),
        deliveries=len(deliveries),
        distinct_delivered=len({(d.partition, d.offset) for d in deliveries}),
        generations=len(generations - {None}),
        members_started=driver_actions["spawn"],
        group_joins=sum(1 for e in member_events if e["event"] == "join"),
        leaves=driver_actions["leave"],
        kills=driver_actions["kill"],
        pauses=driver_actions["pause"],
        fetches_refused=Counter(e["code"] for e in member_events if e["event"] == "fetch-refused"),
        commits_ok=sum(1 for c in commits if c.how == "commit-ok"),
        commits_refused=Counter(e["code"] for e in member_events if e["event"] == "commit-refused"),
        monitor_samples=sum(1 for e in history.monitor if e["event"] == "sample"),
    )
