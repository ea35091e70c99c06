"""A group of 3 real consumers per client library: share, take over, commit and resume.

Each client (kafka-python, aiokafka, confluent-kafka, kcat -G) runs the same
story on a 6-partition topic, every member in its own process:

1. three members share the six partitions, none twice;
2. one closes (leaves the group): the two others take its partitions;
3. one is killed with SIGKILL: after its session timeout (6 s) the last one
   takes everything, and gets again only what the killed one had not
   committed;
4. the last one closes; records produced while the group is empty are read
   by a new member from the committed offsets: nothing skipped, nothing
   committed read again.

The produced history (HTTP produce, whose answer gives every record's
partition and offset) is checked against the consumed history of all members
(:func:`tests.kafka.group_history.check_history`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.kafka.group_history import (
    KcatMember,
    Member,
    Produced,
    WorkerMember,
    check_history,
    consumed,
    produce_over_http,
    wait_for,
)
from tests.support.processes import BrokerProcess

PARTITIONS = 6
PER_PHASE = 300
# Joining, rebalancing and session expiry on a loaded 2-core machine.
SETTLE_S = 90.0


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("groups") / "data"
    data.mkdir()
    broker = BrokerProcess(data, kafka=True).start(timeout=60)
    try:
        yield broker
    finally:
        broker.stop()


def _member_factory(
    client: str, broker: BrokerProcess, group: str, topic: str, workdir: Path
) -> Callable[[str], Member]:
    if client == "kcat":
        if shutil.which("kcat") is None:
            pytest.fail("NOT RUN: kcat is not installed (apt-get install -y kcat)")
        return lambda name: KcatMember(name, broker.kafka_bootstrap, group, topic)
    pytest.importorskip(
        {"kafka-python": "kafka", "aiokafka": "aiokafka", "confluent-kafka": "confluent_kafka"}[
            client
        ],
        reason=f"NOT RUN: {client} is not installed (pip install -e '.[dev]')",
    )
    return lambda name: WorkerMember(client, name, broker.kafka_bootstrap, group, topic, workdir)


def _describe(members: list[Member]) -> str:
    lines = []
    for m in members:
        state = "alive" if m.alive else f"exited {m.process.returncode}"
        lines.append(f"{m.name} ({state}) owns {sorted(m.assignment())}; stderr: {m.stderr()}")
    return "\n".join(lines)


def _settle(live: list[Member], everyone: list[Member]) -> None:
    """Wait until every live member owns partitions and together all; none may own one twice."""
    wait_for(
        lambda: (
            all(m.assignment() for m in live)
            and set().union(*(m.assignment() for m in live)) == set(range(PARTITIONS))
        ),
        SETTLE_S,
        lambda: "the live members never owned all partitions:\n" + _describe(everyone),
    )
    owned = [p for m in live for p in m.assignment()]
    assert sorted(owned) == list(range(PARTITIONS)), "a partition is owned twice:\n" + _describe(
        everyone
    )


def _consume_all(produced: dict[tuple[int, int], Produced], everyone: list[Member]) -> None:
    wait_for(
        lambda: set(produced) <= consumed(everyone),
        SETTLE_S,
        lambda: (
            f"{len(set(produced) - consumed(everyone))} records not consumed:\n"
            + _describe(everyone)
        ),
    )


@pytest.mark.parametrize("client", ["kafka-python", "aiokafka", "confluent-kafka", "kcat"])
def test_three_members_share_take_over_and_resume(
    client: str, kafka_broker: BrokerProcess, tmp_path: Path
) -> None:
    group, topic = f"g-{client}", f"groups-{client}"
    created = httpx.post(
        f"{kafka_broker.url}/v1/topics", json={"name": topic, "partitions": PARTITIONS}
    )
    assert created.status_code == 201, created.text
    new_member = _member_factory(client, kafka_broker, group, topic, tmp_path)
    produced = produce_over_http(kafka_broker.url, topic, PARTITIONS, PER_PHASE, 0)
    a, b, c = new_member("a"), new_member("b"), new_member("c")
    everyone: list[Member] = [a, b, c]
    try:
        # 1. Three members share the partitions.
        _settle([a, b, c], everyone)
        assert all(len(m.assignment()) == 2 for m in (a, b, c)), _describe(everyone)
        _consume_all(produced, everyone)

        # 2. One leaves cleanly: the others take over at once.
        c.close()
        _settle([a, b], everyone)
        produced |= produce_over_http(kafka_broker.url, topic, PARTITIONS, PER_PHASE, PER_PHASE)
        _consume_all(produced, everyone)

        # 3. One is killed: after its session timeout the last one takes over.
        produced |= produce_over_http(kafka_broker.url, topic, PARTITIONS, PER_PHASE, 2 * PER_PHASE)
        b.kill()
        _settle([a], everyone)
        _consume_all(produced, everyone)

        # 4. Commit and resume: the last member commits everything (what the killed
        # one had read but not committed it reads again first); what is produced
        # while nobody reads is read by a newcomer from the committed offsets.
        ends = _end_offsets(kafka_broker, topic)
        wait_for(
            lambda: _committed(kafka_broker, group, topic) == ends,
            SETTLE_S,
            lambda: (
                f"committed {_committed(kafka_broker, group, topic)}, end offsets {ends}:\n"
                + _describe(everyone)
            ),
        )
        a.close()
        committed = _committed(kafka_broker, group, topic)
        assert committed == ends, f"closing the last member moved the commits: {committed}"
        produced |= produce_over_http(kafka_broker.url, topic, PARTITIONS, PER_PHASE, 3 * PER_PHASE)
        d = new_member("d")
        everyone.append(d)
        _settle([d], everyone)
        _consume_all(produced, everyone)
        first_read = {}
        for event in d.events():
            if event.kind == "record":
                first_read.setdefault(event.fields["p"], event.fields["o"])
        assert first_read == committed, "the newcomer did not start at the committed offsets"
    finally:
        for m in everyone:
            m.kill()
    report = check_history(produced, everyone)
    print(
        f"{client}: {len(produced)} produced, {report.records_consumed} consumed,"
        f" {report.redelivered} redelivered (uncommitted tails)"
    )
    assert report.problems == [], "\n".join(report.problems[:20])


def _committed(broker: BrokerProcess, group: str, topic: str) -> dict[int, int | None]:
    described = httpx.get(f"{broker.url}/v1/groups/{group}", timeout=30)
    assert described.status_code == 200, described.text
    return {
        o["partition"]: o["committed_offset"]
        for o in described.json()["offsets"]
        if o["topic"] == topic
    }


def _end_offsets(broker: BrokerProcess, topic: str) -> dict[int, int | None]:
    info = httpx.get(f"{broker.url}/v1/topics/{topic}", timeout=30).json()
    return {p["partition"]: p["end_offset"] for p in info["partition_info"]}
