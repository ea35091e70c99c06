"""kill -9 of one of two gateways: clients given both URLs carry on through the other.

The producers and a reader are :class:`minimq.client.Client` objects given both gateway URLs
(the client's own failover: sticky on one URL, the next one on a refused connection or a
dropped answer).  Half the producers start on each gateway.  Gateway 0 is killed with SIGKILL
mid-load.  Afterwards no acknowledged record is lost and none is stored twice, not even one
whose request was in flight when the gateway died: its retry reaches the other gateway with the
same idempotency key, which the JetStream backend turns into the batch's ``Nats-Msg-Id``, so
the stream recognises it.  The reader, which was reading through the killed gateway, has read
on to the end through the other one.
"""

from __future__ import annotations

import time

from minimq.client import Client
from tests.cluster.conftest import GatewayFactory, results_line, scale
from tests.cluster.history import ProduceHistory, judge, read_partition
from tests.cluster.load import ProducerFleet, Reader
from tests.support.nats_cluster import NatsCluster

TOPIC = "gateways"


def test_clients_carry_on_through_the_other_gateway(
    cluster: NatsCluster, gateways: GatewayFactory
) -> None:
    doomed, survivor = gateways(), gateways()
    with Client(survivor.url, timeout=30) as client:
        client.create_topic(TOPIC, partitions=1)
    phase_s = scale(4.0, 20.0)
    history = ProduceHistory()
    both = [doomed.url, survivor.url]
    fleet = ProducerFleet(
        [both, list(reversed(both))], TOPIC, history, count=int(scale(4, 8)), batch=10
    ).start()
    reader = Reader(both, TOPIC).start()
    try:
        began = time.monotonic()
        time.sleep(phase_s)
        assert reader.read > 0, "the reader read nothing through the first gateway"
        killed = time.monotonic()
        doomed.kill()
        in_flight = fleet.in_flight_at(killed)
        time.sleep(phase_s)
        acked_after = history.acks_between(killed, time.monotonic())
    finally:
        fleet.stop()
    ended = time.monotonic()

    stored = read_partition(survivor.url, TOPIC)
    deadline = time.monotonic() + 60
    while reader.next_offset < len(stored) and time.monotonic() < deadline:
        time.sleep(0.1)
    reader.stop()
    verdict = judge(history.acknowledged, stored)
    retried_in_flight = set(verdict.duplicated) & in_flight
    results_line(
        "kill9-gateway",
        acknowledged=verdict.acknowledged,
        lost=len(verdict.lost),
        duplicated=len(verdict.duplicated),
        duplicated_in_flight=len(retried_in_flight),
        in_flight_at_kill=len(in_flight),
        requests_acked_after_kill=acked_after,
        failed_attempts=dict(history.failures),
        gap_s=f"{history.longest_gap(killed, ended):.2f}",
        reader_read=reader.read,
        reader_failures=reader.failures,
        reader_at=reader.next_offset,
        end_offset=verdict.end_offset,
        run_s=f"{ended - began:.1f}",
    )
    assert verdict.lost == [], f"acknowledged but not stored: {verdict.lost[:10]}"
    assert verdict.misplaced == [], verdict.misplaced[:10]
    assert verdict.duplicated == {}, (
        f"stored twice ({len(retried_in_flight)} of them retried across gateways):"
        f" {list(verdict.duplicated.items())[:10]}"
    )
    assert verdict.contiguous, verdict.summary()
    assert acked_after > 0, "no produce was acknowledged after the gateway died"
    assert reader.next_offset == verdict.end_offset, (
        f"the reader stopped at {reader.next_offset} of {verdict.end_offset}"
    )
