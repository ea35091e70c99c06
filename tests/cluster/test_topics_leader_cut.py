"""The topics bucket's leader cut off: the majority's produce does not wait for it.

Every produce needs its topic's config.  Read from the topics bucket's leader per call, a leader
cut off from the majority stalled the majority's produce for 5-10 s.  Here the leader of the
topics bucket is moved (leader step-down with a preferred node) to a node that follows the
partition's stream, that node is cut off with nftables (``partition.py``), and a gateway on the
two other nodes produces through the cut.  Each of its calls must succeed, and the gateway
asks the topics bucket (a leader read, seen by a subscriber on the API subject) only for the
background revalidations of its topic cache, not once per call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg

from minimq.client import Client
from minimq.jetstream.topic_cache import REVALIDATE_AFTER_S
from tests.cluster.conftest import GatewayFactory, partition_stream, results_line, scale
from tests.cluster.partition import LoopbackPartition
from tests.support.nats_cluster import START_TIMEOUT, NatsCluster

TOPIC = "topics-cut"


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


async def move_leader(cluster: NatsCluster, stream: str, to: int) -> None:
    """Step ``stream``'s leader down until node ``to`` leads it (bounded)."""
    connection = await nats.connect(cluster.urls)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while cluster.stream_leader(stream) != to:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not move the leader of {stream} to node {to}")
            body = {"placement": {"preferred": cluster.nodes[to].name}}
            await connection.request(
                f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", json.dumps(body).encode(), timeout=10
            )
            await asyncio.sleep(1.0)
    finally:
        await connection.close()


async def test_produce_does_not_wait_for_a_cut_off_topics_leader(
    cluster: NatsCluster,
    gateways: GatewayFactory,
    namespace: str,
    partition: LoopbackPartition,
) -> None:
    setup = gateways()
    with Client(setup.url, timeout=30) as client:
        client.create_topic(TOPIC, partitions=1)
        client.produce(TOPIC, {"n": -1}, partition=0)
    stream_leader = cluster.stream_leader(partition_stream(cluster, namespace))
    isolated = next(i for i in range(3) if i != stream_leader)
    topics_stream = f"KV_{namespace}-topics"
    await move_leader(cluster, topics_stream, isolated)
    majority_nodes = [i for i in range(3) if i != isolated]
    majority = gateways(nodes=majority_nodes)
    setup.stop()

    reads: list[float] = []

    async def saw_read(msg: Msg) -> None:
        reads.append(time.monotonic())

    observer = await nats.connect([cluster.urls[i] for i in majority_nodes])
    try:
        # A leader read of the bucket (buckets.LeaderBucket.get) is STREAM.MSG.GET.
        await observer.subscribe(f"$JS.API.STREAM.MSG.GET.{topics_stream}", cb=saw_read)
        await observer.flush()
        cut_s, max_calls = scale(10.0, 30.0), 20_000
        latencies: list[float] = []
        with Client(majority.url, timeout=60, retries=0) as client:
            await asyncio.to_thread(client.produce, TOPIC, {"n": 0}, partition=0)  # warm
            partition.isolate(isolated)
            cut = time.monotonic()
            try:
                while time.monotonic() < cut + cut_s and len(latencies) < max_calls:
                    started = time.monotonic()
                    n = len(latencies) + 1
                    await asyncio.to_thread(client.produce, TOPIC, {"n": n}, partition=0)
                    latencies.append(time.monotonic() - started)
            finally:
                ended = time.monotonic()
                partition.heal()
        await observer.flush()
        await asyncio.sleep(0.5)  # requests routed to the observer before the heal arrive
    finally:
        await observer.close()
    during = [t for t in reads if cut <= t <= ended]
    allowed = int((ended - cut) / REVALIDATE_AFTER_S) + 1
    results_line(
        "topics-leader-cut",
        calls=len(latencies),
        cut_s=f"{ended - cut:.1f}",
        slowest_call_s=f"{max(latencies):.2f}",
        median_call_ms=f"{sorted(latencies)[len(latencies) // 2] * 1000:.1f}",
        topics_leader_reads_during_cut=len(during),
        background_revalidations_allowed=allowed,
        isolated=cluster.nodes[isolated].name,
    )
    # Every call succeeded: with retries=0 a failed one raised.
    assert len(during) <= allowed, (
        f"{len(during)} reads of the topics bucket's leader for {len(latencies)} produce calls; "
        f"at most {allowed} background revalidations expected"
    )
