"""Idempotent produce and partly stored produces over HTTP, through the produce lane and aiohttp.

The broker runs in this process on the in-memory storage fake (so that one
partition can be made to fail), behind the same produce lane and aiohttp
application as ``minimq broker``.  Every case is sent both ways: straight into
the lane, and on a connection that a ``GET /healthz`` handed to aiohttp; both
must answer alike.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web

from minimq.core import Broker
from minimq.core.topic_config import TopicConfig
from minimq.errors import StorageFull
from minimq.server.app import create_app
from minimq.server.config import BrokerConfig
from minimq.server.gate import RequestGate
from minimq.server.metrics import BrokerMetrics
from minimq.server.produce_lane import ProduceLane
from tests.support.memory_storage import MemoryStorage

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
WAYS = ("lane", "aiohttp")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class InProcessBroker:
    broker: Broker
    storage: MemoryStorage
    metrics: BrokerMetrics
    port: int

    def stored(self, topic: str, partition: int = 0) -> list[bytes | None]:
        return [r.value for r in self.storage.logs.partition(topic, partition).records]

    async def send(self, way: str, request: bytes) -> Answer:
        """One request on a new connection, through the lane or through aiohttp."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            if way == "aiohttp":
                writer.write(HEALTHZ)
                assert (await _read_answer(reader)).status == 200
            writer.write(request)
            return await _read_answer(reader)
        finally:
            writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {}
    for line in lines:
        name, value = line.split(":", 1)
        headers[name.lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return Answer(int(status_line.split()[1]), headers, body)


@pytest.fixture
async def served() -> AsyncIterator[InProcessBroker]:
    storage = MemoryStorage()
    metrics = BrokerMetrics()
    broker = Broker(storage, observer=metrics)  # type: ignore[arg-type]
    config = BrokerConfig()
    gate = RequestGate(config.max_connections, None)
    runner = web.AppRunner(
        create_app(broker, config, metrics, gate), access_log=None, handle_signals=False
    )
    await runner.setup()
    assert runner.server is not None
    aiohttp_server = runner.server
    lane = ProduceLane(
        broker,
        metrics,
        gate,
        max_body_bytes=config.max_body_bytes,
        request_timeout_s=10,
        keepalive_timeout_s=10,
    )
    listener = await asyncio.get_running_loop().create_server(
        lambda: lane.connection(aiohttp_server), "127.0.0.1", 0
    )
    try:
        yield InProcessBroker(broker, storage, metrics, listener.sockets[0].getsockname()[1])
    finally:
        listener.close()
        await lane.shutdown(1)
        await runner.cleanup()
        await broker.close()


def post(path: str, body: Any, *headers: str) -> bytes:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    extra = "".join(f"{header}\r\n" for header in headers)
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(raw)}\r\n\r\n"
    ).encode("latin-1") + raw


def records(topic: str, body: Any, *headers: str) -> bytes:
    return post(f"/v1/topics/{topic}/records", body, *headers)


def key(value: str) -> str:
    return f"Idempotency-Key: {value}"


def comparable(answer: Answer) -> tuple[int, dict[str, str], Any]:
    headers = {n: v for n, v in answer.headers.items() if n not in ("date", "content-length")}
    return answer.status, headers, orjson.loads(re.sub(rb"-(lane|aiohttp)\b", b"", answer.body))


@pytest.mark.parametrize("way", WAYS)
async def test_a_retry_with_the_same_key_stores_nothing_twice(
    served: InProcessBroker, way: str
) -> None:
    topic = f"idem-{way}"
    body = {"records": [{"value": n} for n in range(3)]}
    first = await served.send(way, records(topic, body, key("batch-1")))
    again = await served.send(way, records(topic, body, key("batch-1")))
    assert first.status == again.status == 200
    assert first.json() == again.json()
    assert served.stored(topic) == [b"0", b"1", b"2"], "the retry must not be stored"
    other = await served.send(way, records(topic, body, key("batch-2")))
    assert [o["offset"] for o in other.json()["offsets"]] == [3, 4, 5]

    legacy = post("/produce", {"topic": topic, "message": "once"}, key("legacy-1"))
    assert (await served.send(way, legacy)).json() == (await served.send(way, legacy)).json()
    assert served.stored(topic)[-1:] == [b'"once"'] and len(served.stored(topic)) == 7


async def test_the_lane_serves_keyed_produces_itself(served: InProcessBroker) -> None:
    """The key is on the lane's header list: the fast path keeps its requests."""
    served_before = served.metrics.lane_requests
    await served.send("lane", records("lane-keyed", {"records": [{"value": 1}]}, key("k")))
    assert served.metrics.lane_requests == served_before + 1
    assert served.metrics.lane_handoffs == 0


@pytest.mark.parametrize("way", WAYS)
async def test_the_same_key_with_other_records_is_422(served: InProcessBroker, way: str) -> None:
    topic = f"reuse-{way}"
    await served.send(way, records(topic, {"records": [{"value": 1}]}, key("k")))
    answer = await served.send(way, records(topic, {"records": [{"value": 2}]}, key("k")))
    assert answer.status == 422
    assert answer.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert served.stored(topic) == [b"1"]


BAD_KEYS = {
    "empty": key(""),
    "a space inside": key("a b"),
    "too long": key("k" * 256),
    "not ASCII": key("cl\xe9"),
}


@pytest.mark.parametrize("header", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_a_malformed_key_is_400_on_both_ways(served: InProcessBroker, header: str) -> None:
    request = records("bad-keys", {"records": [{"value": 1}]}, header)
    by_lane = await served.send("lane", request)
    by_aiohttp = await served.send("aiohttp", request)
    assert by_lane.status == 400
    assert by_lane.json()["error"]["code"] == "INVALID_REQUEST"
    assert comparable(by_lane) == comparable(by_aiohttp)
    assert not await served.storage.logs.topic_names(), "nothing may be stored"


async def test_blanks_around_a_key_are_not_part_of_it(served: InProcessBroker) -> None:
    body = {"records": [{"value": 1}]}
    await served.send("lane", records("blanks", body, "Idempotency-Key:   k1  "))
    await served.send("aiohttp", records("blanks", body, "Idempotency-Key: k1"))
    assert served.stored("blanks") == [b"1"]


async def test_a_repeated_key_header_is_400(served: InProcessBroker) -> None:
    request = records("repeated", {"records": [{"value": 1}]}, key("a"), key("a"))
    for way in WAYS:  # the lane hands repeated headers to aiohttp
        answer = await served.send(way, request)
        assert answer.status == 400, way
    assert not await served.storage.logs.topic_names()


@pytest.mark.parametrize("way", WAYS)
async def test_a_partly_stored_produce_says_so_and_its_retry_stores_the_rest(
    served: InProcessBroker, way: str
) -> None:
    """Issue #17, defect 6: one of two partitions fails with 507."""
    topic = f"partial-{way}"
    await served.broker.create_topic(topic, TopicConfig(partitions=2))
    body = {"records": [{"value": "a", "partition": 0}, {"value": "b", "partition": 1}]}
    served.storage.logs.partition(topic, 1).failures.append(StorageFull("no space left"))
    failed = await served.send(way, records(topic, body, key("two-partitions")))
    assert failed.status == 507
    assert failed.json()["error"]["code"] == "STORAGE_FULL"
    assert failed.json()["offsets"] == [
        {"partition": 0, "offset": 0},
        {"partition": 1, "offset": None, "error": "STORAGE_FULL"},
    ]
    assert failed.json()["topic"] == topic

    retried = await served.send(way, records(topic, body, key("two-partitions")))
    assert retried.status == 200
    assert retried.json()["offsets"] == [
        {"partition": 0, "offset": 0},
        {"partition": 1, "offset": 0},
    ]
    assert served.stored(topic, 0) == [b'"a"'], "partition 0 must not hold the record twice"
    assert served.stored(topic, 1) == [b'"b"']


async def test_both_ways_answer_a_partial_failure_alike(served: InProcessBroker) -> None:
    answers = []
    for way in WAYS:
        topic = f"alike-{way}"
        await served.broker.create_topic(topic, TopicConfig(partitions=2))
        served.storage.logs.partition(topic, 0).failures.append(StorageFull("no space left"))
        body = {"records": [{"value": "a", "partition": 0}, {"value": "b", "partition": 1}]}
        answers.append(await served.send(way, records(topic, body)))
    assert comparable(answers[0]) == comparable(answers[1])
    assert answers[0].json()["offsets"][1] == {"partition": 1, "offset": 0}
