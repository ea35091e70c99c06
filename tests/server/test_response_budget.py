"""The response budget: large answers reserve bytes, are served smaller or refused, streams wait.

In process (aiohttp's test server, the in-memory storage), with a small budget
so that a few records fill it. The attack sizes are in
``tests/reliability/test_slow_readers.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from minimq.core import Broker
from minimq.server import response_budget
from minimq.server.app import create_app
from minimq.server.config import BrokerConfig
from minimq.server.context import CONTEXT
from minimq.server.metrics import BrokerMetrics
from minimq.server.response_budget import DIRECT_BYTES, ResponseBudget
from tests.support.memory_storage import MemoryStorage

RECORD = "x" * 10_000  # about 10 KB of JSON per record: a few fill the budget below
BUDGET = 256 * 1024


# ------------------------------------------------------------------ the budget itself


def test_reserve_holds_to_the_limit_but_one_answer_alone_always_fits() -> None:
    budget = ResponseBudget(100, write_timeout_s=1)
    assert budget.reserve(60)
    assert not budget.reserve(50)
    assert budget.reserve(40)
    assert budget.room == 0
    budget.release(100)
    assert budget.reserve(1000)  # nothing else reserved: progress, whatever its size
    assert budget.used == 1000


def test_reserve_prefix_takes_the_longest_prefix_that_fits() -> None:
    budget = ResponseBudget(100, write_timeout_s=1)
    assert budget.reserve_prefix([30, 30, 30, 30], fixed=5) == 3
    assert budget.used == 95
    assert budget.reserve_prefix([10], fixed=1) == 0  # would pass the limit
    assert budget.used == 95
    budget.release(95)
    assert budget.reserve_prefix([500, 1], fixed=5) == 1  # alone: the first piece goes out
    assert budget.used == 505


async def test_a_release_wakes_a_waiter() -> None:
    budget = ResponseBudget(10, write_timeout_s=1)
    budget.reserve(10)
    waiter = asyncio.create_task(budget.wait_for_room(30))
    await asyncio.sleep(0)
    budget.release(10)
    await asyncio.wait_for(waiter, 1)


async def test_memory_is_given_back_once_the_budget_is_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(response_budget, "TRIM_IDLE_S", 0.05)
    trims: list[int] = []
    budget = ResponseBudget(1 << 30, write_timeout_s=1, release_memory=lambda: trims.append(1))
    size = response_budget.TRIM_AFTER_BYTES
    budget.reserve(size)
    budget.release(size)
    budget.reserve(1)  # busy again before the trim: it waits for idleness
    await asyncio.sleep(0.08)
    assert trims == []
    budget.release(1)
    await asyncio.sleep(0.2)
    assert trims == [1]
    budget.reserve(10)
    budget.release(10)  # too little freed since: no trim
    await asyncio.sleep(0.2)
    assert trims == [1]


# ----------------------------------------------------------------- through HTTP


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    metrics = BrokerMetrics()
    broker = Broker(MemoryStorage(), observer=metrics)  # type: ignore[arg-type]
    config = BrokerConfig(response_buffer_bytes=BUDGET, write_timeout_s=5)
    async with TestClient(TestServer(create_app(broker, config, metrics))) as test_client:
        response = await test_client.post(
            "/v1/topics/t/records", json={"records": [{"value": RECORD}] * 100}
        )
        assert response.status == 200
        yield test_client
    await broker.close()


def budget_of(client: TestClient[Any, Any]) -> ResponseBudget:
    return client.server.app[CONTEXT].responses  # type: ignore[union-attr]


async def fetch(client: TestClient[Any, Any], offset: int, **params: str) -> Any:
    return await client.get(
        "/v1/topics/t/partitions/0/records",
        params={"offset": str(offset), "limit": "1000", "max_bytes": str(64 << 20), **params},
    )


async def test_a_large_fetch_is_the_same_answer_as_a_small_one(
    client: TestClient[Any, Any],
) -> None:
    large = await fetch(client, 0, limit="10")
    body = await large.read()
    assert len(body) > DIRECT_BYTES  # sent through the budget
    small = await fetch(client, 0, limit="1")
    assert small.headers["Content-Type"] == large.headers["Content-Type"] == "application/json"
    assert int(large.headers["Content-Length"]) == len(body)
    parsed = orjson.loads(body)
    assert orjson.dumps(parsed) == body  # byte for byte orjson's own rendering
    assert [r["offset"] for r in parsed["records"]] == list(range(10))
    assert parsed["next_offset"] == 10
    assert parsed["high_watermark"] == 100
    assert budget_of(client).used == 0


async def test_a_fetch_beyond_the_budget_is_served_smaller_and_the_rest_follows(
    client: TestClient[Any, Any],
) -> None:
    budget = budget_of(client)
    budget.force(BUDGET - 100_000)  # slow readers hold most of it: room for ~9 records
    offsets: list[int] = []
    offset = 0
    while offset < 100:
        response = await fetch(client, offset)
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert 0 < len(answer["records"]) < 100
        offsets += [r["offset"] for r in answer["records"]]
        offset = answer["next_offset"]
    assert offsets == list(range(100))
    budget.release(BUDGET - 100_000)
    assert budget.used == 0


async def test_with_the_budget_spent_fetches_shrink_to_small_answers(
    client: TestClient[Any, Any],
) -> None:
    budget = budget_of(client)
    budget.force(BUDGET)
    response = await fetch(client, 0)
    assert response.status == 200
    body = await response.read()
    assert len(body) <= DIRECT_BYTES
    answer = orjson.loads(body)
    assert [r["offset"] for r in answer["records"]] == list(range(answer["next_offset"]))
    assert answer["next_offset"] > 0
    # A group fetch likewise: it reads no more than a small answer.
    group = await client.get("/v1/groups/g/topics/t/records", params={"limit": "50"})
    assert group.status == 200
    assert len(await group.read()) <= DIRECT_BYTES
    budget.release(BUDGET)
    assert budget.used == 0


async def test_a_record_too_large_for_a_small_answer_waits_for_room_with_503(
    client: TestClient[Any, Any],
) -> None:
    big = {"records": [{"value": "y" * (2 * DIRECT_BYTES)}]}
    assert (await client.post("/v1/topics/big/records", json=big)).status == 200
    budget = budget_of(client)
    budget.force(BUDGET)
    response = await client.get("/v1/topics/big/partitions/0/records", params={"offset": "0"})
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["error"]["code"] == "RESPONSE_BUFFER_FULL"
    metrics = await (await client.get("/metrics")).text()
    assert "minimq_response_buffer_refusals_total 1.0" in metrics
    budget.release(BUDGET)
    response = await client.get("/v1/topics/big/partitions/0/records", params={"offset": "0"})
    assert response.status == 200
    assert (await response.json())["next_offset"] == 1


async def test_a_stream_waits_for_room_and_then_delivers_everything(
    client: TestClient[Any, Any],
) -> None:
    budget = budget_of(client)
    budget.force(BUDGET)
    response = await client.get("/v1/topics/t/stream", params={"from": "earliest"})
    assert response.status == 200
    assert await response.content.readuntil(b"\n\n") == b": connected\n\n"
    with pytest.raises(TimeoutError):  # nothing while the budget is full
        await asyncio.wait_for(response.content.readuntil(b"\n\n"), 0.3)
    budget.release(BUDGET)
    seen = []
    while len(seen) < 100:
        event = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        seen.append(int(event.split(b"\n")[1].split(b":")[2]))
    assert seen == list(range(100))
    response.close()


async def test_head_of_a_large_fetch_sends_the_headers_only(client: TestClient[Any, Any]) -> None:
    got = await fetch(client, 0, limit="10")
    length = got.headers["Content-Length"]
    assert int(length) > DIRECT_BYTES
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    target = b"/v1/topics/t/partitions/0/records?offset=0&limit=10"
    writer.write(
        b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" % target
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: %s\r\n" % length.encode() in head
    # The very next bytes are the next answer, not a body.
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)) == b"HTTP/1.1 200 OK\r\n"
    writer.close()
    await writer.wait_closed()
    assert budget_of(client).used == 0
