"""Consumer-group churn: members join, leave, crash and pause; nothing skipped or doubled.

The first tests feed the checker hand-made histories, each with one fault, to
show that every check can fail; the last ones run the real churn (a broker,
producers and eight member processes) for a bounded time in each mode and
require every check to pass and the churn to have really happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench.churn.checker import COMMIT_TRUE, RunHistory, check_run
from bench.churn.driver import ChurnSettings, run_churn
from bench.churn.member import EXPLICIT, MODES

from tests.reliability.conftest import scale

# ----------------------------------------------------------------- hand-made histories


def event(t: float, name: str, **fields: Any) -> dict[str, Any]:
    return {"t": t, "event": name, **fields}


def answer(
    t: float,
    seq: int,
    member_id: str,
    generation: int,
    records: list[list[int]],
    *,
    positions: list[list[int]] | None = None,
    commit: bool = True,
) -> list[dict[str, Any]]:
    """A fetch-sent and its answer (commit=true: ``positions`` are what it committed)."""
    assignment = sorted({partition for partition, _ in records})
    common = {"seq": seq, "member_id": member_id, "generation": generation, "commit": commit}
    return [
        event(t, "fetch-sent", assignment=assignment, limit=20, **common),
        event(
            t + 0.01,
            "fetch-answer",
            sent=t,
            assignment=assignment,
            records=records,
            positions=positions or [],
            **common,
        ),
    ]


def final(offsets: list[list[int]], members: int = 0) -> dict[str, Any]:
    return event(100.0, "final", members=members, partitions=len(offsets), offsets=offsets)


def history(
    members: dict[str, list[dict[str, Any]]],
    produced: list[list[int]],
    *,
    mode: str = COMMIT_TRUE,
    monitor: list[dict[str, Any]] | None = None,
    driver: list[dict[str, Any]] | None = None,
) -> RunHistory:
    spawns = [event(0.0, "spawn", member=name, pid=1) for name in members]
    exits = [event(99.0, "exited", member=name, pid=1, code=0) for name in members]
    return RunHistory(
        mode=mode,
        members=members,
        produced=[event(0.5, "produced", producer=0, records=produced)],
        monitor=monitor or [],
        driver=spawns + (driver or []) + exits + [final([[0, 3, 3, 0]])],
    )


def failed_checks(run: RunHistory) -> list[str]:
    return [check.name[:1] for check in check_run(run).checks if not check.ok]


def test_a_clean_history_passes() -> None:
    run = history(
        {"m00": answer(1.0, 1, "a", 1, [[0, 0], [0, 1], [0, 2]], positions=[[0, 3]])},
        [[0, 0], [0, 1], [0, 2]],
        monitor=[event(2.0, "sample", members=1, offsets=[[0, 3, 3, 0]])],
    )
    report = check_run(run)
    assert report.ok, report.summary()
    assert report.figures.deliveries == 3
    assert report.figures.gaps == 0


def test_an_offset_handed_to_two_members_in_one_generation_fails_check_1() -> None:
    run = history(
        {
            "m00": answer(1.0, 1, "a", 7, [[0, 0], [0, 1], [0, 2]], commit=False),
            "m01": answer(1.0, 1, "b", 7, [[0, 2]], commit=False),
        },
        [[0, 0], [0, 1], [0, 2]],
        mode=EXPLICIT,
    )
    assert failed_checks(run) == ["1"]


def test_an_acknowledged_offset_never_delivered_fails_check_2() -> None:
    run = history(
        {"m00": answer(1.0, 1, "a", 1, [[0, 0], [0, 2]], positions=[[0, 3]])},
        [[0, 0], [0, 1], [0, 2]],
    )
    report = check_run(run)
    assert failed_checks(run) == ["2"]
    assert report.figures.gaps == 1


def test_only_a_killed_members_unanswered_commit_true_fetch_excuses_a_missing_offset() -> None:
    killed_with_fetch_in_flight = [
        *answer(1.0, 1, "a", 1, [[0, 0]], positions=[[0, 1]]),
        event(2.0, "fetch-sent", seq=2, member_id="a", generation=1, assignment=[0], limit=20),
    ]
    killed_with_fetch_in_flight[-1]["commit"] = True
    produced = [[0, 0], [0, 1], [0, 2]]
    members = {"m00": killed_with_fetch_in_flight, "m01": answer(4.0, 1, "b", 2, [[0, 2]])}
    kill = [event(2.5, "kill", member="m00", pid=1)]

    excused = check_run(history(members, produced, driver=kill))
    assert excused.ok, excused.summary()
    assert excused.figures.lost_with_killed_member == 1

    # Not killed (only its answer is missing), or at-least-once mode: a gap.
    assert failed_checks(history(members, produced)) == ["2"]
    assert "2" in failed_checks(history(members, produced, driver=kill, mode=EXPLICIT))

    # Killed, but the partition was not its own in that generation: a gap.
    killed_with_fetch_in_flight[-1]["assignment"] = [1]
    assert failed_checks(history(members, produced, driver=kill)) == ["2"]


def test_a_lost_fetch_cannot_excuse_an_offset_below_what_was_committed_before_it() -> None:
    # m01's commit=true answer committed up to 2 but handed out only offset 0; m00,
    # killed with its first fetch of the next generation in flight, started at 2 at
    # the earliest, so only offset 2 may be lost with it: offset 1 is a gap.
    produced = [[0, 0], [0, 1], [0, 2]]
    committed_then_lost = answer(1.0, 1, "b", 1, [[0, 0]], positions=[[0, 2]])
    lost_fetch = event(
        2.0, "fetch-sent", seq=1, member_id="a", generation=2, assignment=[0], limit=20
    )
    lost_fetch["commit"] = True
    kill = [event(2.5, "kill", member="m00", pid=1)]
    report = check_run(
        history({"m00": [lost_fetch], "m01": committed_then_lost}, produced, driver=kill)
    )
    assert [check.name[:1] for check in report.checks if not check.ok] == ["2"]
    assert report.figures.lost_with_killed_member == 1  # offset 2: it may have taken that
    assert report.figures.gaps == 1  # offset 1: it may not


def test_a_record_delivered_again_after_its_commit_was_acknowledged_fails_check_3() -> None:
    first = answer(1.0, 1, "a", 1, [[0, 0], [0, 1], [0, 2]], commit=False)
    committed = [
        event(1.1, "commit-sent", seq=2, member_id="a", generation=1),
        event(1.2, "commit-ok", seq=2, member_id="a", generation=1, offsets=[[0, 3]]),
    ]
    again = answer(2.0, 1, "b", 2, [[0, 1], [0, 2]], commit=False)
    run = history({"m00": first + committed, "m01": again}, [[0, 0], [0, 1], [0, 2]], mode=EXPLICIT)
    assert failed_checks(run) == ["3"]

    # The same redelivery of records never committed is at-least-once, and attributed.
    uncommitted = history({"m00": first, "m01": again}, [[0, 0], [0, 1], [0, 2]], mode=EXPLICIT)
    report = check_run(uncommitted)
    assert failed_checks(uncommitted) == []
    assert report.figures.duplicates["rebalance, owner alive"] == 2


def test_a_committed_offset_going_backwards_fails_check_4() -> None:
    produced = [[0, 0], [0, 1], [0, 2]]
    delivered = {"m00": answer(1.0, 1, "a", 1, [[0, 0], [0, 1], [0, 2]], positions=[[0, 3]])}
    monitor = [
        event(2.0, "sample", members=1, offsets=[[0, 3, 3, 0]]),
        event(2.2, "sample", members=1, offsets=[[0, 2, 3, 1]]),
        event(2.4, "sample", members=1, offsets=[[0, 3, 3, 0]]),
    ]
    assert failed_checks(history(delivered, produced, monitor=monitor)) == ["4"]

    # Acknowledged commits in generation order: generation 2 committed less than 1.
    later_but_lower = [
        event(3.0, "commit-sent", seq=5, member_id="b", generation=2),
        event(3.1, "commit-ok", seq=5, member_id="b", generation=2, offsets=[[0, 1]]),
    ]
    assert failed_checks(history({**delivered, "m01": later_but_lower}, produced)) == ["4"]


def test_members_left_behind_fail_check_5() -> None:
    run = history({"m00": answer(1.0, 1, "a", 1, [[0, 0]], positions=[[0, 1]])}, [[0, 0]])
    run.driver[-1] = final([[0, 1, 3, 2]], members=1)
    assert failed_checks(run) == ["5"]


# ----------------------------------------------------------------- the real churn


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_group_churn_skips_nothing_and_repeats_only_uncommitted(tmp_path: Path, mode: str) -> None:
    settings = ChurnSettings(mode=mode, seconds=scale(15, 120), seed=5)
    report = run_churn(tmp_path / mode, settings)
    print(report.summary())
    assert report.ok, f"{report.summary()}\nhistories: {tmp_path / mode}"
    figures = report.figures
    # The churn must have happened, or every check passes vacuously.
    assert figures.kills >= 1
    assert figures.pauses >= 1
    assert figures.leaves >= 1
    assert figures.generations >= 5
    assert figures.deliveries > 0
    assert figures.produced > 100
