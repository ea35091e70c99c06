"""Consumer-group churn with the members spread over two gateways of one JetStream cluster.

The churn checker of ``tests/reliability/test_group_churn.py`` (eight member processes
joining, leaving, SIGKILLed and SIGSTOPped beyond the session timeout, keyed producers, a
``describe_group`` monitor), unchanged, but against two stateless gateways over a real
3-node cluster: each member is given both gateway URLs, every other one starting at the
second, so the group's coordinator (the gateway holding its lease) gets half of its
requests forwarded by the other gateway.  Every check must pass as on one broker: no
record handed to two members in one generation, none acknowledged and skipped, none
delivered again after its commit was acknowledged, commits never backwards, drained at
the end.

The cluster and the gateways are the run's own (:func:`bench.churn.brokers.start_brokers`)
and stopped by PID when it ends.  ``MINIMQ_FULL_RELIABILITY=1`` churns for longer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.churn.driver import ChurnSettings, run_churn
from bench.churn.member import MODES

from tests.cluster.conftest import results_line, scale

GATEWAYS = 2


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_group_churn_over_two_gateways_skips_nothing_and_repeats_only_uncommitted(
    tmp_path: Path, mode: str
) -> None:
    settings = ChurnSettings(mode=mode, seconds=scale(25, 120), seed=5, gateways=GATEWAYS)
    report = run_churn(tmp_path / mode, settings)
    figures = report.figures
    print(report.summary())
    results_line(
        f"group-churn-gateways-{mode}",
        gateways=GATEWAYS,
        seconds=settings.seconds,
        produced=figures.produced,
        deliveries=figures.deliveries,
        distinct=figures.distinct_delivered,
        generations=figures.generations,
        duplicates=sum(figures.duplicates.values()),
        lost_with_killed=figures.lost_with_killed_member,
        gaps=figures.gaps,
        ok=report.ok,
    )
    assert report.ok, f"{report.summary()}\nhistories: {tmp_path / mode}"
    # The churn must have happened, or every check passes vacuously.
    assert figures.kills >= 1
    assert figures.pauses >= 1
    assert figures.leaves >= 1
    assert figures.generations >= 5
    assert figures.deliveries > 0
    assert figures.produced > 100
