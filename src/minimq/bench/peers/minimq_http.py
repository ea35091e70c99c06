"""MiniMQ driven over plain aiohttp + orjson: the broker without ``minimq.client`` in front.

Beside its own client, MiniMQ is measured through a plain async HTTP load
generator. This session speaks the documented HTTP API directly
(``docs/http-api.md``) with one keep-alive ``aiohttp.ClientSession`` and
decodes only what a workload needs (offsets and values), so the difference
between its rows and the ``minimq.client`` rows is the client library's cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from minimq.bench.peers.base import Session

FOLLOW_WAIT_MS = 500
JSON_HEADERS = {"Content-Type": "application/json"}
TIMEOUT = aiohttp.ClientTimeout(total=60)


class MiniMQHttpSession(Session):
    """Topics have one partition; every request goes to partition 0."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        connector = aiohttp.TCPConnector(limit=256)
        self._http = aiohttp.ClientSession(connector=connector, timeout=TIMEOUT)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self._http.request(method, self._base + path, **kwargs) as response:
            body = await response.read()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {body[:200]!r}")
            return orjson.loads(body) if body else None

    async def create_topic(self, topic: str, *, bulk_load: bool = False) -> None:
        config: dict[str, Any] = {"name": topic, "partitions": 1}
        if bulk_load:
            config["fsync"] = "never"
        await self._request("POST", "/v1/topics", data=orjson.dumps(config), headers=JSON_HEADERS)

    async def produce_one(self, topic: str, value: str) -> None:
        await self.produce_batch(topic, [value])

    async def produce_batch(self, topic: str, values: Sequence[str]) -> None:
        body = orjson.dumps({"records": [{"value": value} for value in values]})
        path = f"/v1/topics/{quote(topic, safe='')}/records"
        await self._request("POST", path, data=body, headers=JSON_HEADERS)

    async def _fetch(self, topic: str, offset: int, limit: int, wait_ms: int = 0) -> Any:
        path = f"/v1/topics/{quote(topic, safe='')}/partitions/0/records"
        params = {"offset": offset, "limit": limit, "wait_ms": wait_ms}
        return await self._request("GET", path, params=params)

    async def consume(self, topic: str, count: int, batch: int, deadline: float) -> int:
        offset = 0
        while offset < count and time.perf_counter() < deadline:
            page = await self._fetch(topic, offset, batch)
            if not page["records"]:
                break
            offset = page["next_offset"]
        return int(offset)

    async def follow(
        self, topic: str, count: int, on_value: Callable[[str], None], deadline: float
    ) -> None:
        offset = 0
        while offset < count and time.perf_counter() < deadline:
            page = await self._fetch(topic, offset, 10_000, FOLLOW_WAIT_MS)
            for record in page["records"]:
                on_value(record["value"])
            offset = page["next_offset"]

    async def read_last(self, topic: str, count: int) -> None:
        page = await self._fetch(topic, count - 1, 1)
        if len(page["records"]) != 1:
            raise RuntimeError(f"expected the record at offset {count - 1} of {topic!r}")

    async def close(self) -> None:
        await self._http.close()
