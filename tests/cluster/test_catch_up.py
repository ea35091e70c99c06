"""A node that was down while records were produced catches up after it starts again.

One follower of the partition's stream is stopped, N records are produced through a gateway
(the other two nodes are a quorum), and the node is started again.  The test then reads that
node's OWN view of the stream (its ``/jsz?streams=true`` monitoring report, which describes the
replica it stores) until it holds every record, and the catch-up time is printed: from the start
of the process to the moment its replica had all N.
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
from tests.support.nats_cluster import NatsCluster

TOPIC = "catchup"
BATCH = 500


def test_a_restarted_node_catches_up_with_what_it_missed(
    cluster: NatsCluster, gateways: GatewayFactory, namespace: str
) -> None:
    gateway = gateways()
    records = int(scale(20_000, 200_000))
    with Client(gateway.url, timeout=30) as client:
        client.create_topic(TOPIC, partitions=1)
        client.produce(TOPIC, {"n": -1}, partition=0)  # the stream exists on every node
        stream = partition_stream(cluster, namespace)
        leader = cluster.stream_leader(stream)
        behind = next(i for i in range(3) if i != leader)
        cluster.stop(behind)
        for first in range(0, records, BATCH):
            client.produce_batch(
                TOPIC,
                [{"value": {"n": n}, "partition": 0} for n in range(first, first + BATCH)],
                idempotency_key=f"catchup-{first}",
            )
    expected_last = records + 1  # the first record, then N more; sequences start at 1
    started = time.monotonic()
    cluster.start(behind)
    ready_s = time.monotonic() - started
    deadline = started + 120
    state = None
    while time.monotonic() < deadline:
        state = stream_state(cluster, behind, stream)
        if state and state.get("last_seq") == state.get("messages") == expected_last:
            break
        time.sleep(0.05)
    caught_up_s = time.monotonic() - started
    results_line(
        "catch-up",
        records_missed=records,
        node_ready_s=f"{ready_s:.2f}",
        caught_up_s=f"{caught_up_s:.2f}",
        node_state=state,
    )
    assert state is not None, f"node {behind} does not hold {stream}"
    assert state.get("last_seq") == state.get("messages") == expected_last, (
        f"node {behind} holds {state} after 120 s, not {expected_last} messages"
    )
