"""What a fetch asks the NATS cluster: at most one stream info, and an end never below a record.

Every stream info is a request to the stream leader, the costliest thing a read can ask.  A
fetch asks the bounds once; a read of stored records learns how far whole calls go from the
batch direct get's own answer.  The requests are counted on the storage's real connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from minimq.core import Broker, FetchLimits, StartPosition
from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.jetstream import JetStreamStorage
from minimq.jetstream.names import Names
from tests.support.nats_cluster import START_TIMEOUT, NatsCluster

STREAM_INFO = "STREAM.INFO."


class ApiRequests:
    """Counts the JetStream API requests a storage's connection sends (and sends them)."""

    def __init__(self, storage: JetStreamStorage) -> None:
        self.endpoints: list[str] = []
        connection = storage._connection
        send: Callable[..., Awaitable[dict[str, Any]]] = connection.api

        async def counted(endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            self.endpoints.append(endpoint)
            return await send(endpoint, body)

        connection.api = counted  # type: ignore[method-assign]

    def stream_infos(self) -> int:
        return sum(endpoint.startswith(STREAM_INFO) for endpoint in self.endpoints)

    def clear(self) -> None:
        self.endpoints.clear()


def _wait_until_every_node_stores(
    cluster: NatsCluster, stream: str, last_sequence: int, timeout: float = START_TIMEOUT
) -> None:
    """Until each node's replica of ``stream`` holds ``last_sequence`` (no replica lags)."""
    deadline = time.monotonic() + timeout
    while True:
        behind = []
        for index in cluster.running_indexes():
            report = cluster.jsz(index, "?streams=true")
            stored = [
                int((detail.get("state") or {}).get("last_seq") or 0)
                for account in report.get("account_details") or []
                for detail in account.get("stream_detail") or []
                if detail.get("name") == stream
            ]
            if not stored or stored[0] < last_sequence:
                behind.append(index)
        if not behind:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes {behind} never stored {stream} up to {last_sequence}")
        time.sleep(0.05)


async def _stream_of(storage: JetStreamStorage, namespace: str, topic: str) -> str:
    topic_id = (await storage.logs.topic_config(topic)).topic_id
    assert topic_id is not None
    return Names(namespace).partition_stream(topic_id, 0)


async def test_a_fetch_of_stored_records_asks_for_stream_info_at_most_once(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    """Records stored by another gateway: each fetch page costs at most one stream info."""
    await storage.logs.create_topic("orders", TopicConfig(partitions=1))
    writer = second_gateway.logs.partition("orders", 0)
    for call in range(4):
        await writer.append([NewRecord(None, f"{call}:{i}".encode()) for i in range(50)])
    broker = Broker(storage)
    requests = ApiRequests(storage)
    await broker.fetch("orders", 0, StartPosition.at_offset(0), FetchLimits(max_records=1))
    offset = 0
    while offset < 200:
        requests.clear()
        page = await broker.fetch("orders", 0, StartPosition.at_offset(offset), FetchLimits(70))
        assert requests.stream_infos() <= 1, requests.endpoints
        assert page.records and page.records[0].offset == offset
        assert page.high_watermark >= page.next_offset
        offset = page.next_offset
    assert page.high_watermark == 200
    requests.clear()
    at_end = await broker.fetch("orders", 0, StartPosition.at_offset(200), FetchLimits(70))
    assert (at_end.records, at_end.high_watermark) == ([], 200)
    assert requests.stream_infos() <= 1, requests.endpoints
    requests.clear()
    raw = await broker.fetch_raw("orders", 0, 120, 1024 * 1024)
    assert raw.batches and raw.high_watermark == 200
    assert requests.stream_infos() <= 1, requests.endpoints


async def test_a_read_of_records_another_gateway_stored_asks_no_stream_info(
    nats_cluster: NatsCluster,
    storage: JetStreamStorage,
    second_gateway: JetStreamStorage,
    namespace: str,
) -> None:
    """Past the end this gateway knows, the direct get's answer says how far whole calls go:
    no stream info, and the end follows the records read."""
    await storage.logs.create_topic("orders", TopicConfig(partitions=1))
    reader = storage.logs.partition("orders", 0)
    writer = second_gateway.logs.partition("orders", 0)
    await writer.append([NewRecord(None, b"first")])
    assert [r.value for r in await reader.read(0, 10, 1_000_000)] == [b"first"]
    # No notification tells the reading gateway about the next appends (as when one is lost
    # at a reconnect: they are at most once), so the end it knows stays at 1.
    await storage._notifications.close()
    for call in range(3):
        await writer.append([NewRecord(None, f"{call}:{i}".encode()) for i in range(100)])
    # Every replica has them, so whichever answers the direct get holds them all.
    _wait_until_every_node_stores(nats_cluster, await _stream_of(storage, namespace, "orders"), 301)
    requests = ApiRequests(storage)
    records = await reader.read(1, 1000, 1_000_000)
    assert [r.offset for r in records] == list(range(1, 301))
    assert requests.stream_infos() == 0, requests.endpoints
    assert (await reader.bounds()).end == 301


async def test_reads_racing_appends_hand_out_whole_calls_below_the_end_they_report(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    """While 1,000-record calls are stored, fetches through another gateway get every record in
    order, with a high watermark that is a call boundary, never below a record handed out and
    never going down."""
    await storage.logs.create_topic("orders", TopicConfig(partitions=1))
    writer = storage.logs.partition("orders", 0)
    broker = Broker(second_gateway)
    size, calls = 1000, 12
    total = size * calls

    async def write() -> None:
        for call in range(calls):
            await writer.append([NewRecord(None, f"{call}:{i}".encode()) for i in range(size)])

    writing = asyncio.create_task(write())
    try:
        offset, last_end, fetches = 0, 0, 0
        while offset < total and fetches < 100_000:
            fetches += 1
            page = await broker.fetch(
                "orders", 0, StartPosition.at_offset(offset), FetchLimits(max_records=700)
            )
            assert [r.offset for r in page.records] == list(range(offset, page.next_offset))
            assert page.high_watermark >= page.next_offset
            assert page.high_watermark >= last_end
            assert page.high_watermark % size == 0, page.high_watermark
            last_end, offset = page.high_watermark, page.next_offset
            if not page.records:
                await asyncio.sleep(0.001)
        assert offset == total
        values = [
            r.value
            for r in await second_gateway.logs.partition("orders", 0).read(total - 3, 3, 10_000)
        ]
        assert values == [f"{calls - 1}:{i}".encode() for i in range(size - 3, size)]
    finally:
        await writing
