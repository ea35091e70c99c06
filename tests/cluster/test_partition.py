"""One node cut off from the other two under load: the minority never acknowledges a write.

The isolated node is a follower of the partition's stream.  One gateway is connected only to it
(``--backend`` with that node's URL alone), another only to the two others.  Both carry produce
load.  While the partition lasts, no request sent through the isolated node's gateway may be
acknowledged (it has no quorum), and the majority's gateway must keep acknowledging.  After the
partition heals, the isolated gateway acknowledges again, and every acknowledged record of
either gateway is stored exactly once at its offset.  The cut is made with nftables on
loopback (``partition.py``); where that is impossible the test fails saying what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minimq.client import Client
from tests.cluster.conftest import (
    GatewayFactory,
    partition_stream,
    results_line,
    scale,
)
from tests.cluster.history import ProduceHistory, judge, read_partition
from tests.cluster.load import ProducerFleet
from tests.cluster.partition import LoopbackPartition
from tests.support.nats_cluster import NatsCluster

TOPIC = "partition"


@pytest.fixture
def partition(tmp_path: Path) -> Iterator[LoopbackPartition]:
    made = LoopbackPartition(tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def cluster(tmp_path: Path, partition: LoopbackPartition) -> Iterator[NatsCluster]:
    """This test's cluster, every node in a cgroup of its own (so it can be cut off)."""
    made = NatsCluster(tmp_path / "nats", nodes=3)
    partition.install(made)
    with made:
        yield made


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s:.0f} s")
        time.sleep(0.1)


def leaders(cluster: NatsCluster, namespace: str) -> dict[str, str]:
    """Which node leads the meta group and each stream of ``namespace`` (for the figures)."""
    report = cluster.jsz(cluster.running_indexes()[0], "?streams=true")
    found = {"meta": str((report.get("meta_cluster") or {}).get("leader"))}
    for account in report.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            if namespace in stream.get("name", ""):
                found[stream["name"]] = str((stream.get("cluster") or {}).get("leader"))
    return found


def read_through(url: str) -> str:
    """What a read through ``url`` gets now: the high watermark, or why there was none."""
    try:
        with Client(url, timeout=3, retries=0) as client:
            return f"high_watermark={client.fetch(TOPIC, 0, offset=0, limit=1).high_watermark}"
    except Exception as exc:  # an observation for the figures, whatever it is
        return type(exc).__name__


def test_an_isolated_node_acknowledges_nothing_and_the_majority_carries_on(
    cluster: NatsCluster,
    gateways: GatewayFactory,
    namespace: str,
    partition: LoopbackPartition,
) -> None:
    setup = gateways()
    with Client(setup.url, timeout=30) as client:
        client.create_topic(TOPIC, partitions=1)
        client.produce(TOPIC, {"id": "first"}, partition=0, idempotency_key="first")
    stream = partition_stream(cluster, namespace)
    leader = cluster.stream_leader(stream)
    followers = [i for i in range(3) if i != leader]
    # The hardest follower to lose: the one leading the topics bucket, when there is one.
    topics_leader = next(
        (v for k, v in leaders(cluster, namespace).items() if k.endswith("-topics")), ""
    )
    isolated = next((i for i in followers if cluster.nodes[i].name == topics_leader), followers[0])
    majority = gateways(nodes=[i for i in range(3) if i != isolated])
    minority = gateways(nodes=[isolated])
    setup.stop()

    phase_s, cut_s = scale(3.0, 10.0), scale(10.0, 30.0)
    major_history, minor_history = ProduceHistory(), ProduceHistory()
    major = ProducerFleet([[majority.url]], TOPIC, major_history, count=2, name="maj").start()
    minor = ProducerFleet(
        [[minority.url]],
        TOPIC,
        minor_history,
        count=2,
        name="min",
        client_timeout_s=5.0,
        client_retries=0,
    ).start()
    try:
        wait_until(lambda: minor_history.requests > 0, 60, "the isolated gateway acked nothing")
        time.sleep(phase_s)
        roles = leaders(cluster, namespace)
        partition.isolate(isolated)
        cut = time.monotonic()  # after: a request sent from now on cannot reach a quorum
        try:
            time.sleep(cut_s / 2)
            isolated_read = read_through(minority.url)  # observed, not judged
            time.sleep(max(0.0, cut + cut_s - time.monotonic()))
        finally:
            healed = time.monotonic()
            partition.heal()
        wait_until(
            lambda: minor.acked_requests(healed, float("inf")),
            90,
            "the isolated node's gateway acknowledged nothing after the heal",
        )
        time.sleep(phase_s)
    finally:
        major.stop()
        minor.stop()
    ended = time.monotonic()

    acked_by_minority = minor.acked_requests(cut, healed)
    first_major_ack = min((t for t in major_history.ack_times if t > cut), default=ended)
    first_ack_after_heal = min(r.acked or ended for r in minor.acked_requests(healed, ended))
    acked_by_majority = len(major.acked_requests(cut, healed))
    stored = read_partition(majority.url, TOPIC)
    verdict = judge({**major_history.acknowledged, **minor_history.acknowledged}, stored)
    results_line(
        "partition-follower",
        cut_s=f"{healed - cut:.1f}",
        minority_requests_sent_and_acked_during_cut=len(acked_by_minority),
        majority_requests_sent_and_acked_during_cut=acked_by_majority,
        majority_gap_during_cut_s=f"{major_history.longest_gap(cut, healed):.2f}",
        majority_gap_after_heal_s=f"{major_history.longest_gap(healed, ended):.2f}",
        majority_first_ack_after_cut_s=f"{first_major_ack - cut:.2f}",
        isolated=cluster.nodes[isolated].name,
        leaders=roles,
        minority_first_ack_after_heal_s=f"{first_ack_after_heal - healed:.2f}",
        minority_failed_attempts=dict(minor_history.failures),
        acknowledged=verdict.acknowledged,
        lost=len(verdict.lost),
        duplicated=len(verdict.duplicated),
        contiguous=verdict.contiguous,
        read_through_isolated=isolated_read,
        majority_read=read_through(majority.url),
    )
    when = [  # sent, acknowledged: seconds after the cut
        (round(r.started - cut, 2), round((r.acked or cut) - cut, 2)) for r in acked_by_minority
    ]
    assert acked_by_minority == [], (
        f"the isolated node's gateway acknowledged {len(acked_by_minority)} requests sent"
        f" during the partition (sent, acknowledged; seconds after the cut): {when}"
    )
    assert acked_by_majority > 0, (
        "the majority acknowledged no request sent during the partition"
        f" (isolated {cluster.nodes[isolated].name}, leaders {roles})"
    )
    assert verdict.lost == [], f"acknowledged but not stored: {verdict.lost[:10]}"
    assert verdict.misplaced == [], verdict.misplaced[:10]
    assert verdict.duplicated == {}, list(verdict.duplicated.items())[:10]
    assert verdict.contiguous, verdict.summary()
