"""The original MiniMQ contract: POST /produce and GET /consume, unchanged."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")


def test_produce_then_consume_in_order_then_204(shared_broker: BrokerProcess) -> None:
    url = shared_broker.url
    for message in ["first", {"reading": 21.5}, [1, None, True]]:
        response = httpx.post(f"{url}/produce", json={"topic": "legacy", "message": message})
        assert response.status_code == 201
        assert response.json()["topic"] == "legacy"
    got = []
    for _ in range(3):
        response = httpx.get(f"{url}/consume", params={"topic": "legacy", "consumer_id": "c1"})
        assert response.status_code == 200
        got.append((response.json()["message"], response.json()["offset"]))
    assert got == [("first", 0), ({"reading": 21.5}, 1), ([1, None, True], 2)]
    empty = httpx.get(f"{url}/consume", params={"topic": "legacy", "consumer_id": "c1"})
    assert empty.status_code == 204
    assert empty.content == b""
    other = httpx.get(f"{url}/consume", params={"topic": "legacy", "consumer_id": "c2"})
    assert other.json()["offset"] == 0


def test_consume_of_unknown_topic_is_204(shared_broker: BrokerProcess) -> None:
    response = httpx.get(
        f"{shared_broker.url}/consume", params={"topic": "never-made", "consumer_id": "c"}
    )
    assert response.status_code == 204


def test_consume_without_parameters_is_400(shared_broker: BrokerProcess) -> None:
    response = httpx.get(f"{shared_broker.url}/consume", params={"topic": "t"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


async def test_concurrent_consumers_sharing_an_id_get_every_message_once(
    shared_broker: BrokerProcess,
) -> None:
    url = shared_broker.url
    total = 200
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.post("/v1/topics", json={"name": "shared-legacy", "partitions": 3})
        for start in range(0, total, 50):
            records = [{"value": i} for i in range(start, start + 50)]
            response = await client.post(
                "/v1/topics/shared-legacy/records", json={"records": records}
            )
            assert response.status_code == 200

        async def consumer() -> list[int]:
            seen = []
            while True:
                response = await client.get(
                    "/consume", params={"topic": "shared-legacy", "consumer_id": "team"}
                )
                if response.status_code == 204:
                    return seen
                assert response.status_code == 200
                seen.append(response.json()["message"])

        results = await asyncio.gather(*(consumer() for _ in range(8)))
    everything = [value for seen in results for value in seen]
    assert sorted(everything) == list(range(total))
    assert sum(1 for seen in results if seen) > 1
