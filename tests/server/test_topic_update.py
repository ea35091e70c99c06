"""``PATCH /v1/topics/{topic}``: retention changed, validated, persisted and applied."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from minimq.client import Client
from minimq.errors import InvalidRequest
from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")

DAY_MS = 86_400_000


def test_patch_round_trip_keeps_what_is_not_given(shared_broker: BrokerProcess) -> None:
    url = f"{shared_broker.url}/v1/topics"
    assert httpx.post(url, json={"name": "patched", "partitions": 2}).status_code == 201
    answer = httpx.patch(f"{url}/patched", json={"retention_ms": DAY_MS})
    assert answer.status_code == 200, answer.text
    config = answer.json()["config"]
    assert (config["retention_ms"], config["retention_bytes"]) == (DAY_MS, None)
    answer = httpx.patch(f"{url}/patched", json={"retention_bytes": 1 << 30})
    config = answer.json()["config"]
    assert (config["retention_ms"], config["retention_bytes"]) == (DAY_MS, 1 << 30)
    assert answer.json()["partitions"] == 2
    # null: unlimited again; the description says so too.
    httpx.patch(f"{url}/patched", json={"retention_ms": None, "retention_bytes": None})
    config = httpx.get(f"{url}/patched").json()["config"]
    assert (config["retention_ms"], config["retention_bytes"]) == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        {"retention_ms": 0},
        {"retention_ms": -5},
        {"retention_bytes": 2**63},
        {"retention_ms": "1h"},
        {"retention_ms": True},
        {"partitions": 3},
        {"name": "other"},
        {},
    ],
)
def test_bad_updates_are_400_and_change_nothing(shared_broker: BrokerProcess, body: object) -> None:
    url = f"{shared_broker.url}/v1/topics"
    httpx.post(url, json={"name": "strict", "retention_ms": DAY_MS})
    answer = httpx.patch(f"{url}/strict", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "INVALID_REQUEST"
    assert httpx.get(f"{url}/strict").json()["config"]["retention_ms"] == DAY_MS
    assert httpx.patch(f"{url}/strict", content=b"[1]").status_code == 400


def test_unknown_topic_is_404(shared_broker: BrokerProcess) -> None:
    answer = httpx.patch(f"{shared_broker.url}/v1/topics/nowhere", json={"retention_ms": 5})
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "TOPIC_NOT_FOUND")


def test_client_update_topic_and_set_retention(shared_broker: BrokerProcess) -> None:
    with Client(shared_broker.url) as client:
        client.create_topic("by-client", retention_bytes=4096)
        info = client.update_topic("by-client", retention_ms=DAY_MS)
        assert (info.config["retention_ms"], info.config["retention_bytes"]) == (DAY_MS, 4096)
        info = client.set_retention("by-client", retention_ms=None, retention_bytes=None)
        assert (info.config["retention_ms"], info.config["retention_bytes"]) == (None, None)
        with pytest.raises(InvalidRequest):
            client.update_topic("by-client")


def test_the_change_survives_a_restart_and_the_next_retention_pass_applies_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old = int(time.time() * 1000) - 10 * DAY_MS
    args = ["--retention-check-interval", "0.2"]
    with BrokerProcess(data, args) as broker, Client(broker.url) as client:
        client.create_topic("aging", segment_bytes=4096)
        for start in range(0, 400, 100):
            client.produce_batch(
                "aging",
                [
                    {"value": {"n": i, "pad": "x" * 64}, "timestamp": old}
                    for i in range(start, start + 100)
                ],
            )
        topic_id = json.loads((data / "topics/aging/topic.json").read_text())["topic_id"]
        time.sleep(0.6)  # a few retention passes with no retention: nothing goes
        assert client.describe_topic("aging").partition_info[0].start_offset == 0
        client.update_topic("aging", retention_ms=DAY_MS)
        deadline = time.monotonic() + 60
        while client.describe_topic("aging").partition_info[0].start_offset == 0:
            assert time.monotonic() < deadline, "no retention pass applied the new retention"
            time.sleep(0.1)
    stored = json.loads((data / "topics/aging/topic.json").read_text())
    assert (stored["retention_ms"], stored["topic_id"]) == (DAY_MS, topic_id)
    with BrokerProcess(data) as broker, Client(broker.url) as client:
        assert client.describe_topic("aging").config["retention_ms"] == DAY_MS
