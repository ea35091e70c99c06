"""v1 topics, produce and fetch over real HTTP."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
import pytest

from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")


@pytest.fixture
def client(shared_broker: BrokerProcess) -> Any:
    with httpx.Client(base_url=shared_broker.url, timeout=30) as client:
        yield client


def test_topic_create_describe_list_delete(client: httpx.Client) -> None:
    created = client.post(
        "/v1/topics", json={"name": "life", "partitions": 3, "retention_ms": 86_400_000}
    )
    assert created.status_code == 201
    info = created.json()
    assert info["partitions"] == 3
    assert info["config"]["retention_ms"] == 86_400_000
    assert [p["partition"] for p in info["partition_info"]] == [0, 1, 2]
    assert client.post("/v1/topics", json={"name": "life"}).json()["error"]["code"] == (
        "TOPIC_ALREADY_EXISTS"
    )
    assert client.get("/v1/topics/life").json()["name"] == "life"
    assert "life" in [t["name"] for t in client.get("/v1/topics").json()["topics"]]
    assert client.delete("/v1/topics/life").status_code == 204
    missing = client.get("/v1/topics/life")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "TOPIC_NOT_FOUND"


def test_values_come_back_identical_in_type_and_content(client: httpx.Client) -> None:
    values = [
        "text",
        "",
        0,
        -(2**63),
        2**64 - 1,
        1.5,
        1e300,
        True,
        None,
        [],
        {},
        {"nested": {"list": [1, "two", {"three": 3.0}]}, "unicode": "é€😀"},
    ]
    records = [{"value": v, "key": "same", "headers": {"n": str(i)}} for i, v in enumerate(values)]
    produced = client.post("/v1/topics/types/records", json={"records": records}).json()
    partitions = {o["partition"] for o in produced["offsets"]}
    assert len(partitions) == 1
    fetched = client.get(
        f"/v1/topics/types/partitions/{partitions.pop()}/records", params={"limit": 100}
    ).json()
    assert [r["value"] for r in fetched["records"]] == values
    assert [r["headers"] for r in fetched["records"]] == [{"n": str(i)} for i in range(len(values))]
    assert {r["key"] for r in fetched["records"]} == {"same"}
    assert fetched["next_offset"] == fetched["high_watermark"] == len(values)


def test_keyed_records_go_to_a_stable_partition_unkeyed_spread(client: httpx.Client) -> None:
    client.post("/v1/topics", json={"name": "spread", "partitions": 4})
    keyed = [{"value": i, "key": "sensor-1"} for i in range(20)]
    unkeyed = [{"value": i} for i in range(20)]
    one = client.post("/v1/topics/spread/records", json={"records": keyed}).json()["offsets"]
    two = client.post("/v1/topics/spread/records", json={"records": keyed}).json()["offsets"]
    assert len({o["partition"] for o in one + two}) == 1
    spread = client.post("/v1/topics/spread/records", json={"records": unkeyed}).json()["offsets"]
    assert {o["partition"] for o in spread} == {0, 1, 2, 3}
    explicit = client.post(
        "/v1/topics/spread/records", json={"records": [{"value": 1, "partition": 3}]}
    ).json()
    assert explicit["offsets"][0]["partition"] == 3
    bad = client.post("/v1/topics/spread/records", json={"records": [{"value": 1, "partition": 9}]})
    assert bad.status_code == 404
    assert bad.json()["error"]["code"] == "PARTITION_NOT_FOUND"


def test_fetch_positions_limits_and_out_of_range(client: httpx.Client) -> None:
    records = [{"value": i, "timestamp": 1_000_000 + i * 10} for i in range(10)]
    client.post("/v1/topics", json={"name": "positions"})
    client.post("/v1/topics/positions/records", json={"records": records})
    base = "/v1/topics/positions/partitions/0/records"
    page = client.get(base, params={"offset": 2, "limit": 3}).json()
    assert [r["value"] for r in page["records"]] == [2, 3, 4]
    assert page["next_offset"] == 5
    assert client.get(base, params={"offset": "latest"}).json()["records"] == []
    by_time = client.get(base, params={"timestamp": 1_000_045, "limit": 1}).json()
    assert by_time["records"][0]["value"] == 5
    out = client.get(base, params={"offset": 11})
    assert out.status_code == 416
    assert out.json()["error"]["code"] == "OFFSET_OUT_OF_RANGE"
    assert client.get("/v1/topics/positions/partitions/5/records").status_code == 404
    assert client.get(base, params={"limit": 0}).status_code == 400
    assert client.get(base, params={"offset": "soon"}).status_code == 400


def test_produce_to_unknown_topic_without_auto_create(tmp_path: Any) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with BrokerProcess(data, ["--no-auto-create-topics"]) as broker:
        response = httpx.post(
            f"{broker.url}/v1/topics/nope/records", json={"records": [{"value": 1}]}
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "TOPIC_NOT_FOUND"


async def test_long_poll_wakes_within_50_ms_of_a_produce(shared_broker: BrokerProcess) -> None:
    async with httpx.AsyncClient(base_url=shared_broker.url, timeout=30) as client:
        await client.post("/v1/topics", json={"name": "wake"})
        delays = []
        for i in range(5):
            fetch = asyncio.create_task(
                client.get(
                    "/v1/topics/wake/partitions/0/records",
                    params={"offset": i, "wait_ms": 10_000},
                )
            )
            await asyncio.sleep(0.2)
            assert not fetch.done()
            await client.post("/v1/topics/wake/records", json={"records": [{"value": i}]})
            acked = time.perf_counter()
            response = await fetch
            delays.append(time.perf_counter() - acked)
            assert [r["value"] for r in response.json()["records"]] == [i]
    assert statistics.median(delays) < 0.05


def test_long_poll_returns_empty_after_the_wait(client: httpx.Client) -> None:
    client.post("/v1/topics", json={"name": "quiet"})
    started = time.monotonic()
    response = client.get(
        "/v1/topics/quiet/partitions/0/records", params={"offset": "latest", "wait_ms": 300}
    )
    assert response.json()["records"] == []
    assert 0.25 < time.monotonic() - started < 5


def test_health_metrics_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    client.post("/v1/topics/metered/records", json={"records": [{"value": 1}]})
    client.get("/v1/topics/metered/partitions/0/records")
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'minimq_messages_produced_total{topic="metered"} 1.0' in metrics.text
    assert 'minimq_messages_fetched_total{topic="metered"} 1.0' in metrics.text
    assert "minimq_http_request_seconds_bucket" in metrics.text
    assert "minimq_append_fsync_seconds_count" in metrics.text
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")


def test_unknown_route_and_wrong_method_are_json(client: httpx.Client) -> None:
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    wrong = client.put("/v1/topics")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_request_metrics_keep_a_bounded_label_set(client: httpx.Client) -> None:
    # Method names and paths come from clients: the labels must not grow with them.
    other = 'minimq_http_request_seconds_count{method="OTHER",route="unmatched",status="405"}'
    unmatched = 'minimq_http_request_seconds_count{method="GET",route="unmatched",status="404"}'

    def counts() -> tuple[float, float]:
        text = client.get("/metrics").text
        found = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("minimq"))
        return float(found.get(other, 0)), float(found.get(unmatched, 0))

    before = counts()
    for n in range(5):
        method = ("PROPFIND", "PURGE", "MKCOL", "LINK", "UNLINK")[n]
        assert client.request(method, "/v1/topics").status_code == 405
        assert client.get(f"/no/such/route/{n}").status_code == 404
    after = counts()
    assert (after[0] - before[0], after[1] - before[1]) == (5, 5)
    text = client.get("/metrics").text
    assert "PROPFIND" not in text and "/no/such/route" not in text


MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stored_values(client: httpx.Client, topic: str) -> list[Any]:
    info = client.get(f"/v1/topics/{topic}").json()
    values = []
    for partition in range(info["partitions"]):
        page = client.get(f"/v1/topics/{topic}/partitions/{partition}/records").json()
        values.extend(record["value"] for record in page["records"])
    return values


def test_topic_timestamp_bounds_are_accepted_and_described(client: httpx.Client) -> None:
    bounds = {"message_timestamp_before_max_ms": DAY_MS, "message_timestamp_after_max_ms": 0}
    created = client.post("/v1/topics", json={"name": "bounded", **bounds})
    assert created.status_code == 201, created.text
    assert {k: created.json()["config"][k] for k in bounds} == bounds
    assert {k: client.get("/v1/topics/bounded").json()["config"][k] for k in bounds} == bounds
    # Unset: null, like fsync, meaning the broker-wide default.
    inherits = client.post("/v1/topics", json={"name": "inherits"}).json()["config"]
    assert {k: inherits[k] for k in bounds} == dict.fromkeys(bounds)
    for bad in (-1, 2**63, "1h", True):
        refused = client.post(
            "/v1/topics", json={"name": "bad-bound", "message_timestamp_after_max_ms": bad}
        )
        assert refused.status_code == 400, (bad, refused.text)
    assert client.get("/v1/topics/bad-bound").status_code == 404


# Needs check_timestamps called in Broker.produce (minimq.core.timestamps).
def test_produce_outside_the_timestamp_bounds_is_refused_whole(client: httpx.Client) -> None:
    client.post(
        "/v1/topics",
        json={
            "name": "stamped",
            "partitions": 3,
            "message_timestamp_before_max_ms": DAY_MS,
            "message_timestamp_after_max_ms": MINUTE_MS,
        },
    )
    url = "/v1/topics/stamped/records"
    now = now_ms()
    for bad in (now + 10 * MINUTE_MS, now + 365 * DAY_MS, now - 2 * DAY_MS, 0):
        records = [
            {"value": "fine", "key": "a", "timestamp": now},
            {"value": "unstamped", "key": "b"},
            {"value": "bad", "key": "c", "timestamp": bad},
        ]
        refused = client.post(url, json={"records": records})
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["error"]["code"] == "INVALID_TIMESTAMP"
    assert stored_values(client, "stamped") == [], "a refused request stored records"
    assert client.get("/v1/topics/stamped").json()["messages"] == 0

    within = [
        {"value": "hour-old", "timestamp": now_ms() - 60 * MINUTE_MS},
        {"value": "a-bit-ahead", "timestamp": now_ms() + 10_000},
        {"value": "unstamped"},
    ]
    accepted = client.post(url, json={"records": within})
    assert accepted.status_code == 200, accepted.text
    assert sorted(stored_values(client, "stamped")) == ["a-bit-ahead", "hour-old", "unstamped"]

    # A topic without bounds of its own gets the broker's: Kafka 4.0's defaults,
    # any time in the past and at most one hour ahead.
    default_url = "/v1/topics/default-bounds/records"
    ahead = client.post(
        default_url, json={"records": [{"value": 1, "timestamp": now + 2 * 60 * MINUTE_MS}]}
    )
    assert ahead.status_code == 400
    assert ahead.json()["error"]["code"] == "INVALID_TIMESTAMP"
    ancient = client.post(default_url, json={"records": [{"value": 2, "timestamp": 1}]})
    assert ancient.status_code == 200, ancient.text
    assert stored_values(client, "default-bounds") == [2]


# Needs check_timestamps in Broker.produce and the flags passed on to BrokerSettings.
def test_broker_wide_timestamp_bounds_apply_to_topics_without_their_own(tmp_path: Any) -> None:
    data = tmp_path / "data"
    data.mkdir()
    flags = [
        "--message-timestamp-before-max-ms",
        str(DAY_MS),
        "--message-timestamp-after-max-ms",
        "0",
    ]
    with BrokerProcess(data, flags) as broker, httpx.Client(base_url=broker.url) as client:
        url = "/v1/topics/auto/records"  # auto-created: no bounds of its own
        ahead = client.post(
            url, json={"records": [{"value": 1, "timestamp": now_ms() + MINUTE_MS}]}
        )
        assert ahead.status_code == 400, ahead.text
        old = client.post(url, json={"records": [{"value": 2, "timestamp": now_ms() - 2 * DAY_MS}]})
        assert old.status_code == 400, old.text
        assert client.post(url, json={"records": [{"value": 3}]}).status_code == 200
        recent = client.post(url, json={"records": [{"value": 4, "timestamp": now_ms() - 1_000}]})
        assert recent.status_code == 200, recent.text
        assert stored_values(client, "auto") == [3, 4]
        # A topic's own bound wins over the broker's.
        client.post("/v1/topics", json={"name": "own", "message_timestamp_after_max_ms": DAY_MS})
        own = client.post(
            "/v1/topics/own/records",
            json={"records": [{"value": 5, "timestamp": now_ms() + MINUTE_MS}]},
        )
        assert own.status_code == 200, own.text
