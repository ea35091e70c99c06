"""MiniMQ: ``python -m minimq broker`` driven through :class:`minimq.client.AsyncClient`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from minimq import __version__
from minimq.bench import kafka_workloads
from minimq.bench.peers.base import Durability, Peer, Session
from minimq.bench.peers.minimq_http import MiniMQHttpSession
from minimq.bench.peers.process import ServerProcess, free_port
from minimq.client import AsyncClient

BROKER = "MiniMQ"
RAW_HTTP_BROKER = "MiniMQ (aiohttp)"
# Long-poll slices: short enough that a follower notices its deadline promptly.
FOLLOW_WAIT_MS = 500
CLIENT_TIMEOUT_S = 60.0


class MiniMQSession(Session):
    """Topics have one partition; positions are plain offsets of partition 0."""

    def __init__(self, base_url: str) -> None:
        self._client = AsyncClient(base_url, timeout=CLIENT_TIMEOUT_S, retries=0)

    async def create_topic(self, topic: str, *, bulk_load: bool = False) -> None:
        await self._client.create_topic(topic, partitions=1, fsync="never" if bulk_load else None)

    async def produce_one(self, topic: str, value: str) -> None:
        await self._client.produce(topic, value)

    async def produce_batch(self, topic: str, values: Sequence[str]) -> None:
        await self._client.produce_batch(topic, [{"value": value} for value in values])

    async def consume(self, topic: str, count: int, batch: int, deadline: float) -> int:
        offset = 0
        while offset < count and time.perf_counter() < deadline:
            page = await self._client.fetch(topic, 0, offset=offset, limit=batch)
            if not page.records:
                break
            offset = page.next_offset
        return offset

    async def follow(
        self, topic: str, count: int, on_value: Callable[[str], None], deadline: float
    ) -> None:
        offset = 0
        while offset < count and time.perf_counter() < deadline:
            page = await self._client.fetch(
                topic, 0, offset=offset, limit=10_000, wait_ms=FOLLOW_WAIT_MS
            )
            for record in page.records:
                on_value(record.value)
            offset = page.next_offset

    async def read_last(self, topic: str, count: int) -> None:
        page = await self._client.fetch(topic, 0, offset=count - 1, limit=1)
        if len(page.records) != 1:
            raise RuntimeError(f"expected the record at offset {count - 1} of {topic!r}")

    async def close(self) -> None:
        await self._client.close()


class MiniMQPeer(Peer):
    """The broker in a child process with ``--fsync <policy>``.

    ``raw_http=False`` drives it through :class:`minimq.client.AsyncClient` (the
    way a Python user would); ``raw_http=True`` through plain aiohttp
    (:class:`~minimq.bench.peers.minimq_http.MiniMQHttpSession`), reported as a
    separate broker column, "MiniMQ (aiohttp)".
    """

    relaxes_per_topic = True

    def __init__(self, durability: Durability, fsync: str, *, raw_http: bool = False) -> None:
        super().__init__(durability, f"fsync={fsync}")
        self.fsync = fsync
        self.raw_http = raw_http
        self.broker = RAW_HTTP_BROKER if raw_http else BROKER
        # The cost-growth test needs one MiniMQ driver only: the client's.
        self.measures_growth = not raw_http

    def server(self) -> ServerProcess:
        # The Kafka rows go with the client's column, like the wrk rows; the broker binds
        # its Kafka listener before HTTP, so it is up once the HTTP port answers.
        extra_ports = {} if self.raw_http else {"kafka": free_port()}
        kafka_port = extra_ports.get("kafka", 0)

        def command(port: int, data_dir: Path) -> list[str]:
            return [
                sys.executable, "-m", "minimq", "broker",
                "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
                "--kafka-port", str(kafka_port),
                "--fsync", self.fsync, "--log-level", "WARNING",
            ]  # fmt: skip

        return ServerProcess("minimq", command, extra_ports)

    async def connect(self, server: ServerProcess) -> Session:
        url = f"http://127.0.0.1:{server.port}"
        return MiniMQHttpSession(url) if self.raw_http else MiniMQSession(url)

    def wrk_url(self, server: ServerProcess) -> str | None:
        # The wrk rows go with the client's column; the aiohttp column is raw HTTP already.
        return None if self.raw_http else f"http://127.0.0.1:{server.port}"

    def kafka_bootstrap(self, server: ServerProcess) -> str | None:
        port = server.extra_ports.get("kafka")
        return None if port is None else f"127.0.0.1:{port}"

    def versions(self) -> dict[str, str]:
        versions = {"minimq": __version__}
        if not self.raw_http and kafka_workloads.unavailable_reason() is None:
            versions["confluent-kafka"] = kafka_workloads.client_version()
        return versions
