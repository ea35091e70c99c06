"""The checker itself: it must flag every kind of violation it promises to find."""

from __future__ import annotations

from bench.reliability.ledger import Ledger


def ledger_with_history() -> Ledger:
    ledger = Ledger()
    ledger.sent(["a", "b", "c", "d", "e"])
    ledger.acknowledged(["a", "b"], [(0, 0), (0, 1)])
    ledger.unknown(["c"])  # sent, no answer: may be stored 0..n times
    # "d" was refused; "e" was acknowledged after a retry of nothing unknown.
    ledger.acknowledged(["e"], [(1, 0)])
    return ledger


def test_a_correct_log_passes_with_explained_duplicates() -> None:
    verdict = ledger_with_history().check_log(
        {0: [(0, "a"), (1, "b"), (2, "c"), (3, "c")], 1: [(0, "e")]}
    )
    assert verdict.ok, verdict.summary()
    assert verdict.duplicates_explained == 1


def test_every_violation_is_reported() -> None:
    cases = {
        "missing": {0: [(0, "a")], 1: [(0, "e")]},
        "overwritten": {0: [(0, "a"), (1, "c")], 1: [(0, "e")]},
        "gap": {0: [(0, "a"), (1, "b"), (3, "c")], 1: [(0, "e")]},
        "refused stored": {0: [(0, "a"), (1, "b"), (2, "d")], 1: [(0, "e")]},
        "unexplained duplicate": {0: [(0, "a"), (1, "b")], 1: [(0, "e"), (1, "e")]},
        "never sent": {0: [(0, "a"), (1, "b"), (2, "zzz")], 1: [(0, "e")]},
    }
    for name, partitions in cases.items():
        verdict = ledger_with_history().check_log(partitions)
        assert not verdict.ok, name
        assert len(verdict.problems) == 1, (name, verdict.problems)


def test_committed_offsets_must_not_go_behind_an_acknowledged_commit() -> None:
    ledger = Ledger()
    ledger.commit_acknowledged("g", {("t", 0): 10})
    ledger.commit_unknown("g", {("t", 0): 7})  # in flight at the crash
    assert ledger.check_commits("g", {("t", 0): 10}) == []
    assert ledger.check_commits("g", {("t", 0): 7}) == []
    assert len(ledger.check_commits("g", {("t", 0): 9})) == 1
    assert len(ledger.check_commits("g", {})) == 1
    ledger.commit_acknowledged("g", {("t", 0): 12})
    assert len(ledger.check_commits("g", {("t", 0): 7})) == 1
