"""v1 consumer groups over real HTTP: membership, assignment, commit, reset."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

import minimq.server
from minimq.core import Broker, BrokerSettings, ProduceRecord
from minimq.core.groups import OffsetCommitEntry
from minimq.core.groups.consumer_protocol import encode_assignment, encode_subscription
from minimq.server.app import create_app
from minimq.server.config import BrokerConfig
from minimq.server.metrics import BrokerMetrics
from tests.support.memory_storage import MemoryStorage
from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")


@pytest.fixture(scope="module")
def groups_broker(backend_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    """The module's broker on each backend of ``pytestmark`` (stopped by ``backend_broker``)."""
    return backend_broker(["--session-timeout-ms", "400"])


@pytest.fixture
def client(groups_broker: BrokerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=groups_broker.url, timeout=30) as client:
        yield client


def make_topic(client: httpx.Client, name: str, partitions: int, per_partition: int) -> None:
    client.post("/v1/topics", json={"name": name, "partitions": partitions})
    records = [
        {"value": f"{p}-{i}", "partition": p}
        for p in range(partitions)
        for i in range(per_partition)
    ]
    if records:
        response = client.post(f"/v1/topics/{name}/records", json={"records": records})
        assert response.status_code == 200


def group_fetch(
    client: httpx.Client, group: str, topic: str, member: str, **params: object
) -> dict:
    response = client.get(
        f"/v1/groups/{group}/topics/{topic}/records", params={"member_id": member, **params}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_members_share_partitions_and_take_over_when_one_leaves(client: httpx.Client) -> None:
    make_topic(client, "shared", 4, 2)
    alone = group_fetch(client, "g1", "shared", "a")
    assert alone["assignment"] == [0, 1, 2, 3]
    assert len(alone["records"]) == 8
    second = group_fetch(client, "g1", "shared", "b")
    assert second["assignment"] == [2, 3]
    first = client.post("/v1/groups/g1/heartbeat", json={"topic": "shared", "member_id": "a"})
    assert first.json() == {
        "group": "g1",
        "topic": "shared",
        "member_id": "a",
        "generation": second["generation"],
        "assignment": [0, 1],
    }
    assert second["generation"] > alone["generation"]
    assert (
        client.post("/v1/groups/g1/leave", json={"topic": "shared", "member_id": "b"}).status_code
        == 204
    )
    again = client.post("/v1/groups/g1/heartbeat", json={"topic": "shared", "member_id": "a"})
    assert again.json()["assignment"] == [0, 1, 2, 3]


def test_expired_member_partitions_are_reassigned(client: httpx.Client) -> None:
    make_topic(client, "expiry", 2, 1)
    group_fetch(client, "g2", "expiry", "a")
    assert group_fetch(client, "g2", "expiry", "b")["assignment"] == [1]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.1)
        assignment = client.post(
            "/v1/groups/g2/heartbeat", json={"topic": "expiry", "member_id": "b"}
        ).json()["assignment"]
        if assignment == [0, 1]:
            break
    assert assignment == [0, 1]
    members = client.get("/v1/groups/g2").json()["members"]
    assert [m["member_id"] for m in members] == ["b"]


def test_commit_describe_lag_list_reset_delete(client: httpx.Client) -> None:
    make_topic(client, "lag", 2, 5)
    fetched = group_fetch(client, "g3", "lag", "m", limit=3, commit="true")
    assert [r["offset"] for r in fetched["records"]] == [0, 1, 2]
    assert fetched["positions"] == [{"partition": 0, "offset": 3}, {"partition": 1, "offset": 0}]
    committed = client.post(
        "/v1/groups/g3/commit",
        json={
            "offsets": [{"topic": "lag", "partition": 1, "offset": 4}],
            "member_id": "m",
            "generation": fetched["generation"],
        },
    )
    assert committed.json() == {"committed": [{"topic": "lag", "partition": 1, "offset": 4}]}
    info = client.get("/v1/groups/g3").json()
    lags = {
        o["partition"]: (o["committed_offset"], o["end_offset"], o["lag"]) for o in info["offsets"]
    }
    assert lags == {0: (3, 5, 2), 1: (4, 5, 1)}
    listed = {g["group"]: g for g in client.get("/v1/groups").json()["groups"]}
    assert listed["g3"]["topics"] == ["lag"]
    assert listed["g3"]["members"] == 1
    reset = client.post("/v1/groups/g3/reset", json={"topic": "lag", "to": "earliest"}).json()
    assert {o["committed_offset"] for o in reset["offsets"]} == {0}
    again = group_fetch(client, "g3", "lag", "m", limit=1)
    assert again["records"][0]["offset"] == 0
    one = client.post(
        "/v1/groups/g3/reset", json={"topic": "lag", "to": "offset", "offset": 2, "partition": 1}
    ).json()
    assert {o["partition"]: o["committed_offset"] for o in one["offsets"]} == {0: 0, 1: 2}
    too_far = client.post(
        "/v1/groups/g3/commit", json={"offsets": [{"topic": "lag", "partition": 0, "offset": 99}]}
    )
    assert too_far.status_code == 416
    refused = client.delete("/v1/groups/g3")
    assert refused.json()["error"]["code"] == "GROUP_HAS_MEMBERS"
    client.post("/v1/groups/g3/leave", json={"topic": "lag", "member_id": "m"})
    assert client.delete("/v1/groups/g3").status_code == 204
    assert client.get("/v1/groups/g3").json()["error"]["code"] == "GROUP_NOT_FOUND"
    assert client.delete("/v1/groups/g3").status_code == 404


def test_a_read_without_member_id_is_no_member_and_unknown_topic_is_404(
    client: httpx.Client,
) -> None:
    make_topic(client, "anon", 1, 1)
    response = client.get("/v1/groups/g4/topics/anon/records")
    assert response.status_code == 200
    body = response.json()
    assert (body["member_id"], body["generation"], body["assignment"]) == (None, None, [0])
    assert client.get("/v1/groups/g4").json()["error"]["code"] == "GROUP_NOT_FOUND"
    joined = client.post("/v1/groups/g4/join", json={"topic": "anon"}).json()
    assert len(joined["member_id"]) >= 16 and joined["assignment"] == [0]
    missing = client.get("/v1/groups/g4/topics/nothing-here/records")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "TOPIC_NOT_FOUND"


def test_group_long_poll_returns_new_records(
    client: httpx.Client, groups_broker: BrokerProcess
) -> None:
    make_topic(client, "gpoll", 1, 0)
    group_fetch(client, "g5", "gpoll", "m", auto_offset_reset="latest")

    def produce_later() -> None:
        time.sleep(0.3)
        httpx.post(
            f"{groups_broker.url}/v1/topics/gpoll/records", json={"records": [{"value": 42}]}
        )

    thread = threading.Thread(target=produce_later)
    thread.start()
    polled = group_fetch(client, "g5", "gpoll", "m", wait_ms=10_000)
    thread.join()
    assert [r["value"] for r in polled["records"]] == [42]


def test_committed_offsets_survive_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with BrokerProcess(data) as broker, httpx.Client(base_url=broker.url) as client:
        make_topic(client, "persist", 1, 6)
        group_fetch(client, "g6", "persist", "m", limit=4, commit="true")
        broker.restart()
        resumed = group_fetch(client, "g6", "persist", "other")
        assert [r["offset"] for r in resumed["records"]] == [4, 5]


# -- Kafka groups over HTTP (in-process: members join through the coordinator, as the
# -- Kafka listener's handlers do, and the HTTP API describes them)


def _openapi_validator(name: str) -> jsonschema.protocols.Validator:
    spec = json.loads((Path(minimq.server.__file__).parent / "openapi.json").read_text())
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


async def test_kafka_groups_are_listed_and_described_with_members_and_lag() -> None:
    broker = Broker(MemoryStorage(), BrokerSettings(default_partitions=2))  # type: ignore[arg-type]
    await broker.produce("kt", [ProduceRecord(b"v", partition=p) for p in (0, 1)] * 3)
    groups = broker.groups.kafka
    joined = await asyncio.wait_for(
        groups.join(
            "kg",
            "",
            group_instance_id=None,
            client_id="rdkafka",
            client_host="/127.0.0.1",
            session_timeout_ms=10_000,
            rebalance_timeout_ms=10_000,
            protocol_type="consumer",
            protocols=[("range", encode_subscription(["kt"]))],
            api_version=3,
        ),
        30,
    )
    assignment = encode_assignment({"kt": [0, 1]})
    await groups.sync("kg", joined.member_id, joined.generation, [(joined.member_id, assignment)])
    await groups.commit_offsets(
        "kg", joined.member_id, joined.generation, [OffsetCommitEntry("kt", 0, 2, "meta")]
    )
    async with TestClient(TestServer(create_app(broker, BrokerConfig(), BrokerMetrics()))) as http:
        listed = await (await http.get("/v1/groups")).json()
        described = await (await http.get("/v1/groups/kg")).json()
    await broker.close()
    _openapi_validator("GroupSummary").validate(listed["groups"][0])
    _openapi_validator("GroupInfo").validate(described)
    assert listed["groups"] == [
        {
            "group": "kg",
            "topics": ["kt"],
            "members": 1,
            "state": "Stable",
            "total_lag": 4,
            "protocol_type": "kafka",
        }
    ]
    assert (described["protocol_type"], described["state"]) == ("kafka", "Stable")
    assert described["generation"] == joined.generation
    (member,) = described["members"]
    assert (member["member_id"], member["topic"], member["partitions"]) == (
        joined.member_id,
        "kt",
        [0, 1],
    )
    assert (member["client_id"], member["client_host"]) == ("rdkafka", "/127.0.0.1")
    assert [(o["partition"], o["committed_offset"], o["lag"]) for o in described["offsets"]] == [
        (0, 2, 1),
        (1, None, 3),
    ]
