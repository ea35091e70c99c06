"""kill -9 at random moments under 4 producers and 2 group consumers: nothing acknowledged lost."""

from __future__ import annotations

from pathlib import Path

from bench.reliability.crash_loop import run_crash_loop

from tests.reliability.conftest import FULL, scale

RECOVERY_BOUND_S = 2.0


def test_random_kill_9_under_load_loses_nothing_acknowledged(data_dir: Path) -> None:
    result = run_crash_loop(data_dir, kills=scale(3, 20), seed=7)
    print(result.summary())
    assert result.verdict.ok, result.summary()
    assert result.commit_problems == []
    assert result.undelivered == set()
    assert result.verdict.acknowledged > 100, "the load must actually run between kills"
    assert len(result.recovery_s) == scale(3, 20)
    if FULL:
        assert max(result.recovery_s) < RECOVERY_BOUND_S, result.recovery_s
