"""Server-Sent Events deliver new records as they are produced."""

from __future__ import annotations

import threading
import time

import httpx
import orjson
import pytest

from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")


def read_events(response: httpx.Response, count: int) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    event_id = ""
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line.removeprefix("id: ")
        elif line.startswith("data: "):
            events.append((event_id, orjson.loads(line.removeprefix("data: "))))
            if len(events) == count:
                break
    return events


def test_stream_from_latest_delivers_new_records(shared_broker: BrokerProcess) -> None:
    url = shared_broker.url
    httpx.post(f"{url}/v1/topics", json={"name": "live", "partitions": 2})
    httpx.post(f"{url}/v1/topics/live/records", json={"records": [{"value": "old"}]})

    def produce_soon() -> None:
        time.sleep(0.3)
        records = [{"value": {"n": 1}, "partition": 1}, {"value": {"n": 2}, "partition": 0}]
        httpx.post(f"{url}/v1/topics/live/records", json={"records": records})

    producer = threading.Thread(target=produce_soon)
    with httpx.stream("GET", f"{url}/v1/topics/live/stream", timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        producer.start()
        events = read_events(response, 2)
    producer.join()
    assert sorted(data["value"]["n"] for _, data in events) == [1, 2]
    assert {event_id for event_id, _ in events} == {"1:0", "0:1"}


def test_stream_from_an_offset_replays_one_partition(shared_broker: BrokerProcess) -> None:
    url = shared_broker.url
    records = [{"value": i, "partition": 0} for i in range(5)]
    httpx.post(f"{url}/v1/topics", json={"name": "replay", "partitions": 2})
    httpx.post(f"{url}/v1/topics/replay/records", json={"records": records})
    params = {"from": "3", "partition": "0"}
    with httpx.stream(
        "GET", f"{url}/v1/topics/replay/stream", params=params, timeout=10
    ) as response:
        events = read_events(response, 2)
    assert [data["value"] for _, data in events] == [3, 4]


def test_stream_errors_are_json_before_streaming(shared_broker: BrokerProcess) -> None:
    url = shared_broker.url
    missing = httpx.get(f"{url}/v1/topics/no-such-topic/stream")
    assert missing.status_code == 404
    httpx.post(f"{url}/v1/topics", json={"name": "streamerr"})
    needs_partition = httpx.get(f"{url}/v1/topics/streamerr/stream", params={"from": "5"})
    assert needs_partition.status_code == 400
