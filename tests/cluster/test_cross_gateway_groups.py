"""Consumer groups whose members talk to different gateways over one cluster.

Stateless gateways mean any request may reach any gateway: two members of one HTTP group,
each joined through another gateway, must share the topic's partitions (disjoint, together
all of them) and see each other in ``describe_group``; and the original
``/consume?consumer_id=`` contract must hand each message to exactly one caller even when the
callers alternate between gateways.

Each group has one coordinator, the gateway holding its ownership lease: the others forward
HTTP group requests to it and answer Kafka group requests NOT_COORDINATOR (FindCoordinator
names the owner). So two Kafka consumers bootstrapped through different gateways share the
partitions too, and when the owner is killed, another gateway takes the group over once the
lease expired, from the committed offsets, skipping nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import kafka.errors
import pytest

import kafka
from minimq.client import Client
from tests.cluster.conftest import GatewayFactory
from tests.support.nats_cluster import START_TIMEOUT, NatsCluster
from tests.support.processes import BrokerProcess

PARTITIONS = 4
SETTLE_S = 30.0


def test_members_on_two_gateways_share_the_partitions(
    cluster: NatsCluster, gateways: GatewayFactory
) -> None:
    args = ["--session-timeout-ms", "20000"]
    first, second = gateways(extra_args=args), gateways(extra_args=args)
    with Client(first.url, timeout=30) as a, Client(second.url, timeout=30) as b:
        a.create_topic("shared", partitions=PARTITIONS)
        member_a = a.join_group("g", "shared")
        member_b = b.join_group("g", "shared")
        # Rejoining as the same member learns the group's current generation and assignment.
        deadline = time.monotonic() + SETTLE_S
        while True:
            member_a = a.join_group("g", "shared", member_a.member_id)
            member_b = b.join_group("g", "shared", member_b.member_id)
            if member_a.generation == member_b.generation or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        seen_by_first = sorted(m.member_id for m in a.describe_group("g").members)
        seen_by_second = sorted(m.member_id for m in b.describe_group("g").members)
    both = sorted([member_a.member_id, member_b.member_id])
    evidence = (
        f"member a (gateway 1): generation {member_a.generation}, partitions"
        f" {member_a.assignment}; member b (gateway 2): generation {member_b.generation},"
        f" partitions {member_b.assignment}; members seen by gateway 1: {seen_by_first},"
        f" by gateway 2: {seen_by_second}"
    )
    print(f"CLUSTER-RESULT cross-gateway-group: {evidence}", flush=True)
    assert seen_by_first == both and seen_by_second == both, evidence
    assert not set(member_a.assignment) & set(member_b.assignment), evidence
    assert sorted(member_a.assignment + member_b.assignment) == list(range(PARTITIONS)), evidence


def test_consume_with_one_consumer_id_across_gateways_delivers_each_message_once(
    cluster: NatsCluster, gateways: GatewayFactory
) -> None:
    first, second = gateways(), gateways()
    messages = 200
    for n in range(messages):
        answer = httpx.post(
            f"{first.url}/produce", json={"topic": "legacy", "message": n}, timeout=30
        )
        assert answer.status_code == 201, answer.text
    got: list[tuple[str, int]] = []
    lock = threading.Lock()

    def consume(url: str) -> None:
        """Concurrent callers, one per gateway, same consumer id, until the topic is drained."""
        with httpx.Client(timeout=30) as http:
            for _ in range(messages * 2):  # bounded: each call gets one message or 204
                answer = http.get(f"{url}/consume", params={"topic": "legacy", "consumer_id": "c"})
                if answer.status_code == 204:
                    return
                assert answer.status_code == 200, answer.text
                with lock:
                    got.append((url, answer.json()["message"]))

    callers = [threading.Thread(target=consume, args=(g.url,)) for g in (first, second) * 2]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(120)
    values = sorted(v for _, v in got)
    per_gateway = {g.url: sum(1 for u, _ in got if u == g.url) for g in (first, second)}
    repeated = sorted(v for v in set(values) if values.count(v) > 1)
    print(
        f"CLUSTER-RESULT cross-gateway-consume: deliveries={len(got)} per_gateway="
        f"{list(per_gateway.values())} repeated={len(repeated)}"
        f" missing={len(set(range(messages)) - set(values))}",
        flush=True,
    )
    assert values == list(range(messages)), f"repeated {repeated[:20]}"


KafkaGatewayFactory = Callable[..., BrokerProcess]


@pytest.fixture
def kafka_gateways(
    tmp_path: Path, cluster: NatsCluster, namespace: str
) -> Iterator[KafkaGatewayFactory]:
    """Gateways over the cluster with a Kafka listener each (all killed at the end)."""
    started: list[BrokerProcess] = []

    def start(*extra_args: str) -> BrokerProcess:
        data = tmp_path / f"kafka-gateway-{len(started)}" / "data"
        data.mkdir(parents=True)
        process = BrokerProcess(
            data,
            ["--replicas", "3", "--log-level", "WARNING", *extra_args],
            kafka=True,
            backend=",".join(cluster.urls),
            nats_namespace=namespace,
        )
        started.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            process.kill()


class KafkaMember(threading.Thread):
    """A kafka-python consumer of group ``kg`` that commits what it polled, until stopped."""

    def __init__(self, bootstrap: str, topic: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.stop = bootstrap, topic, stop
        self.assignment: set[int] = set()
        self.got: list[tuple[int, int, int]] = []  # (partition, offset, value)
        self.error: BaseException | None = None
        self.refused_commits = 0
        self.committed = 0  # how many of ``got`` are committed
        self.commit_times: list[float] = []  # monotonic, of each commit that succeeded
        self.first_seen: dict[int, float] = {}  # value -> monotonic time first polled

    def run(self) -> None:
        try:
            consumer = kafka.KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id="kg",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000,
                max_poll_interval_ms=60_000,
            )
            consumer.subscribe([self.topic])
            try:
                while not self.stop.is_set():
                    batch = consumer.poll(timeout_ms=200)
                    self.assignment = {tp.partition for tp in consumer.assignment()}
                    offsets = {}
                    for tp, records in batch.items():
                        self.got.extend((tp.partition, r.offset, int(r.value)) for r in records)
                        now = time.monotonic()
                        for r in records:
                            self.first_seen.setdefault(int(r.value), now)
                        offsets[tp] = kafka.OffsetAndMetadata(records[-1].offset + 1, "", -1)
                    if offsets:
                        try:
                            consumer.commit(offsets)
                        except kafka.errors.CommitFailedError:
                            # The group moved on (a rebalance, a new coordinator): the next
                            # poll joins again, and these records come again.
                            self.refused_commits += 1
                        else:
                            self.committed = len(self.got)
                            self.commit_times.append(time.monotonic())
            finally:
                consumer.close()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc


def test_kafka_members_bootstrapped_through_two_gateways_share_the_partitions(
    cluster: NatsCluster, kafka_gateways: KafkaGatewayFactory
) -> None:
    first, second = kafka_gateways(), kafka_gateways()
    with Client(first.url, timeout=30) as client:
        client.create_topic("kt", partitions=PARTITIONS)
    stop = threading.Event()
    members = [KafkaMember(g.kafka_bootstrap, "kt", stop) for g in (first, second)]
    try:
        for member in members:
            member.start()
        # Records come only once both members hold their share: every record then has
        # exactly one reader, so any duplicate would be two live owners of one partition.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            a, b = (m.assignment for m in members)
            if a and b and not a & b and sorted(a | b) == list(range(PARTITIONS)):
                break
            assert all(m.error is None for m in members), [m.error for m in members]
            time.sleep(0.2)
        settled = [sorted(m.assignment) for m in members]
        messages = 400
        with Client(second.url, timeout=30) as client:
            client.produce_batch(
                "kt", [{"value": n, "partition": n % PARTITIONS} for n in range(messages)]
            )
        deadline = time.monotonic() + START_TIMEOUT
        while sum(len(m.got) for m in members) < messages and time.monotonic() < deadline:
            assert all(m.error is None for m in members), [m.error for m in members]
            time.sleep(0.2)
    finally:
        stop.set()
        for member in members:
            member.join(60)
    values = sorted(v for m in members for _, _, v in m.got)
    by_member = [sorted({p for p, _, _ in m.got}) for m in members]
    print(
        f"CLUSTER-RESULT cross-gateway-kafka-group: assignments {settled}, records per member"
        f" {[len(m.got) for m in members]}, partitions read per member {by_member}",
        flush=True,
    )
    assert all(m.error is None for m in members), [m.error for m in members]
    assert settled[0] and settled[1] and not set(settled[0]) & set(settled[1]), settled
    assert not set(by_member[0]) & set(by_member[1]), by_member
    assert values == list(range(messages)), "duplicated or missing records"


def _consume_one(http: httpx.Client, url: str) -> httpx.Response:
    return http.get(f"{url}/consume", params={"topic": "legacy", "consumer_id": "c"})


def test_owner_kill_moves_the_group_to_another_gateway_without_skipping(
    cluster: NatsCluster, gateways: GatewayFactory
) -> None:
    lease_ms = 3_000
    args = ["--group-lease-ms", str(lease_ms)]
    owner, survivor = gateways(extra_args=args), gateways(extra_args=args)
    messages, before_kill = 100, 30
    with httpx.Client(timeout=30) as http:
        for n in range(messages):
            answer = http.post(f"{owner.url}/produce", json={"topic": "legacy", "message": n})
            assert answer.status_code == 201, answer.text
        got = []
        for _ in range(before_kill):  # the first request claims the group for `owner`
            answer = _consume_one(http, owner.url)
            assert answer.status_code == 200, answer.text
            got.append(answer.json()["message"])
        # Through the survivor, before the kill: forwarded to the owner.
        answer = _consume_one(http, survivor.url)
        assert answer.status_code == 200, answer.text
        got.append(answer.json()["message"])
        owner.kill()
        killed = time.monotonic()
        refusals: dict[int, int] = {}
        resumed_after_s = None
        deadline = killed + START_TIMEOUT
        while time.monotonic() < deadline:
            answer = _consume_one(http, survivor.url)
            if answer.status_code == 204:
                break
            if answer.status_code in (503, 504):  # the dead owner's lease has not expired yet
                refusals[answer.status_code] = refusals.get(answer.status_code, 0) + 1
                time.sleep(0.1)
                continue
            assert answer.status_code == 200, answer.text
            if resumed_after_s is None:
                resumed_after_s = time.monotonic() - killed
            got.append(answer.json()["message"])
    print(
        f"CLUSTER-RESULT owner-kill-takeover: lease {lease_ms} ms, first delivery by the"
        f" survivor {resumed_after_s:.2f} s after kill -9 of the owner, refusals meanwhile"
        f" {refusals}, delivered {len(got)} of {messages}",
        flush=True,
    )
    assert resumed_after_s is not None, "the survivor never took the group over"
    assert 504 not in refusals, "a request reached the dead owner and got no answer"
    assert got == list(range(messages)), "records skipped or delivered twice"


def test_kafka_group_resumes_on_another_gateway_after_its_owner_is_killed(
    cluster: NatsCluster, kafka_gateways: KafkaGatewayFactory
) -> None:
    lease_ms = 3_000
    owner = kafka_gateways("--group-lease-ms", str(lease_ms))
    survivor = kafka_gateways("--group-lease-ms", str(lease_ms))
    messages, first_half = 300, 150
    with Client(owner.url, timeout=30) as client:
        client.create_topic("kt", partitions=PARTITIONS)
        client.produce_batch(
            "kt", [{"value": n, "partition": n % PARTITIONS} for n in range(first_half)]
        )
        # Any group request claims the group: `owner` coordinates it from now on, although
        # the member below bootstraps through the survivor (FindCoordinator names `owner`).
        httpx.get(f"{owner.url}/v1/groups/kg", timeout=30)
    stop = threading.Event()
    member = KafkaMember(survivor.kafka_bootstrap, "kt", stop)
    try:
        member.start()
        deadline = time.monotonic() + START_TIMEOUT
        # Killed once the first half is committed: the new coordinator must resume after it.
        while member.committed < first_half and time.monotonic() < deadline:
            assert member.error is None, member.error
            time.sleep(0.05)
        before_kill = len(member.got)
        owner.kill()
        killed = time.monotonic()
        with Client(survivor.url, timeout=30) as client:
            client.produce_batch(
                "kt",
                [{"value": n, "partition": n % PARTITIONS} for n in range(first_half, messages)],
            )
        deadline = killed + START_TIMEOUT
        # Until everything was read and committed, the last commits by the new coordinator.
        while (
            len(member.first_seen) < messages or member.committed < len(member.got)
        ) and time.monotonic() < deadline:
            assert member.error is None, member.error
            time.sleep(0.05)
    finally:
        stop.set()
        member.join(60)
    values = [v for _, _, v in member.got]
    again = len(values) - len(set(values))  # counted here, checked below
    after_kill = [t for v, t in member.first_seen.items() if v >= first_half]
    resumed_after_s = f"{min(after_kill) - killed:.2f}" if after_kill else None
    commits_after = [t - killed for t in member.commit_times if t > killed]
    takeover_s = f"{commits_after[0]:.2f}" if commits_after else None
    print(
        f"CLUSTER-RESULT kafka-owner-kill: lease {lease_ms} ms, {before_kill} records committed"
        f" before kill -9 of the coordinator; next record polled {resumed_after_s} s after it"
        f" (fetches need no coordinator), first commit accepted again {takeover_s} s after it;"
        f" records {len(set(values))} of {messages}, read again {again} (polled after the"
        f" kill), commits refused {member.refused_commits}",
        flush=True,
    )
    assert member.error is None, member.error
    assert sorted(set(values)) == list(range(messages)), "records skipped"
    # Records polled while the coordinator was gone and whose commit it refused come again
    # (at least once); none committed before the kill does.
    repeated = sorted({v for v in values if values.count(v) > 1})
    assert all(v >= first_half for v in repeated), f"committed records read again: {repeated}"
    assert commits_after, "no commit was accepted after the coordinator was killed"


def test_a_gateway_stopped_cleanly_hands_its_groups_over_at_once(
    cluster: NatsCluster, gateways: GatewayFactory
) -> None:
    # A lease far longer than the test: only the release at shutdown can move the group.
    args = ["--group-lease-ms", "600000"]
    owner, survivor = gateways(extra_args=args), gateways(extra_args=args)
    with httpx.Client(timeout=30) as http:
        for n in range(2):
            answer = http.post(f"{owner.url}/produce", json={"topic": "legacy", "message": n})
            assert answer.status_code == 201, answer.text
        first = _consume_one(http, owner.url)  # claims the group for `owner`
        assert first.status_code == 200, first.text
        assert owner.stop() == 0
        second = _consume_one(http, survivor.url)
    assert second.status_code == 200, second.text
    assert [first.json()["message"], second.json()["message"]] == [0, 1]
