"""kill -9 of a follower, then of the stream leader, under produce load through a gateway.

Four producers (more with ``MINIMQ_FULL_RELIABILITY=1``) send batches over HTTP with an
idempotency key per request.  While they run, a follower of the partition's stream is killed
with SIGKILL and started again, then the stream's (possibly new) leader is killed and started
again.  Afterwards every acknowledged record must be readable exactly once at the offset it was
acknowledged with, offsets contiguous, and a new produce must succeed.  Figures (acknowledged,
lost, duplicated, the longest time without any acknowledgement) are printed as a
``CLUSTER-RESULT`` line.
"""

from __future__ import annotations

import time

from minimq.client import Client
from tests.cluster.conftest import (
    GatewayFactory,
    partition_stream,
    results_line,
    scale,
    stream_state,
)
from tests.cluster.history import ProduceHistory, judge, read_partition
from tests.cluster.load import ProducerFleet
from tests.support.nats_cluster import NatsCluster

TOPIC = "kills"


def wait_for_acks(history: ProduceHistory, more_than: int, timeout_s: float) -> None:
    """Until the producers have ``more_than`` acknowledged records (service is back)."""
    deadline = time.monotonic() + timeout_s
    while len(history.acknowledged) <= more_than:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no acknowledgement for {timeout_s:.0f} s after the fault"
                f" (failures so far: {dict(history.failures)})"
            )
        time.sleep(0.1)


def wait_caught_up(cluster: NatsCluster, index: int, stream: str, timeout_s: float) -> None:
    """Until node ``index`` holds ``stream`` up to the leader's last sequence."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        leader = cluster.stream_leader(stream)
        ahead = stream_state(cluster, leader, stream)
        mine = stream_state(cluster, index, stream)
        if ahead and mine and mine.get("last_seq", -1) >= ahead.get("last_seq", 0) - 1000:
            return
        time.sleep(0.2)
    raise AssertionError(f"node {index} did not catch up on {stream} within {timeout_s:.0f} s")


def test_kill_9_follower_then_leader_loses_and_duplicates_nothing(
    cluster: NatsCluster, gateways: GatewayFactory, namespace: str
) -> None:
    gateway = gateways()
    with Client(gateway.url, timeout=30) as client:
        client.create_topic(TOPIC, partitions=1)
    stream = partition_stream(cluster, namespace)
    phase_s = scale(3.0, 15.0)
    history = ProduceHistory()
    fleet = ProducerFleet([[gateway.url]], TOPIC, history, count=int(scale(4, 8)), batch=10).start()
    try:
        began = time.monotonic()
        wait_for_acks(history, 0, 60)
        time.sleep(phase_s)

        leader = cluster.stream_leader(stream)
        follower = next(i for i in range(3) if i != leader)
        before = len(history.acknowledged)
        follower_killed = time.monotonic()
        cluster.kill(follower)
        wait_for_acks(history, before, 60)
        time.sleep(phase_s)
        follower_gap = history.longest_gap(follower_killed, time.monotonic())
        follower_restarted = time.monotonic()
        cluster.start(follower)
        wait_caught_up(cluster, follower, stream, 60)
        time.sleep(phase_s)
        follower_rejoin_gap = history.longest_gap(follower_restarted, time.monotonic())

        leader = cluster.stream_leader(stream)
        before = len(history.acknowledged)
        leader_killed = time.monotonic()
        cluster.kill(leader)
        wait_for_acks(history, before, 60)
        time.sleep(phase_s)
        leader_gap = history.longest_gap(leader_killed, time.monotonic())
        leader_restarted = time.monotonic()
        cluster.start(leader)
        wait_caught_up(cluster, leader, stream, 60)
        time.sleep(phase_s)
        leader_rejoin_gap = history.longest_gap(leader_restarted, time.monotonic())
    finally:
        fleet.stop()
    ended = time.monotonic()

    with Client(gateway.url, timeout=30) as client:  # service resumed: a produce succeeds
        after = client.produce(TOPIC, {"id": "after"}, partition=0, idempotency_key="after")
    acknowledged = {**history.acknowledged, "after": after.offset}
    verdict = judge(acknowledged, read_partition(gateway.url, TOPIC))
    results_line(
        "kill9-follower-then-leader",
        acknowledged=verdict.acknowledged,
        lost=len(verdict.lost),
        misplaced=len(verdict.misplaced),
        duplicated=len(verdict.duplicated),
        unacknowledged_stored=verdict.unacknowledged_stored,
        contiguous=verdict.contiguous,
        requests=history.requests,
        retried_requests=history.retried_requests,
        failed_attempts=dict(history.failures),
        follower_kill_gap_s=f"{follower_gap:.2f}",
        follower_rejoin_gap_s=f"{follower_rejoin_gap:.2f}",
        leader_kill_gap_s=f"{leader_gap:.2f}",
        leader_rejoin_gap_s=f"{leader_rejoin_gap:.2f}",
        longest_gap_s=f"{history.longest_gap(began, ended):.2f}",
        run_s=f"{ended - began:.1f}",
    )
    assert verdict.lost == [], f"acknowledged but not stored: {verdict.lost[:10]}"
    assert verdict.misplaced == [], f"stored at another offset: {verdict.misplaced[:10]}"
    assert verdict.duplicated == {}, f"stored twice: {list(verdict.duplicated.items())[:10]}"
    assert verdict.contiguous, verdict.summary()
    assert verdict.acknowledged > 0 and history.requests > 0
