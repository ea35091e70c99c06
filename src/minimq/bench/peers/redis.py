"""Redis Streams: ``redis-server`` with the append-only file, driven through redis-py (asyncio).

Produce uses ``XADD`` (one per round trip) and a non-transactional pipeline of
``XADD`` for batches; consuming pages through ``XRANGE`` with an exclusive
start id; following uses ``XREAD BLOCK``; reading the last entry ``XREVRANGE
COUNT 1``. Strongest setting: ``appendfsync always``; default (with the AOF on):
``appendfsync everysec``. RDB snapshots are off (``--save ''``) so they do not
add unrelated disk work.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from minimq.bench.deps import require
from minimq.bench.peers.base import Durability, Peer, Session
from minimq.bench.peers.process import ServerProcess

FIELD = "v"
FOLLOW_BLOCK_MS = 500
SOCKET_TIMEOUT_S = 60.0


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


class RedisSession(Session):
    def __init__(self, client: Any) -> None:
        self._redis = client

    async def create_topic(self, topic: str, *, bulk_load: bool = False) -> None:
        # A stream exists from its first XADD; make sure no earlier one is in the way.
        await self._redis.delete(topic)

    async def produce_one(self, topic: str, value: str) -> None:
        await self._redis.xadd(topic, {FIELD: value})

    async def produce_batch(self, topic: str, values: Sequence[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for value in values:
                pipe.xadd(topic, {FIELD: value})
            await pipe.execute()

    async def consume(self, topic: str, count: int, batch: int, deadline: float) -> int:
        read = 0
        start = "-"
        while read < count and time.perf_counter() < deadline:
            entries = await self._redis.xrange(topic, min=start, count=batch)
            if not entries:
                break
            read += len(entries)
            start = "(" + entries[-1][0].decode()
        return read

    async def follow(
        self, topic: str, count: int, on_value: Callable[[str], None], deadline: float
    ) -> None:
        last_id = "0-0"
        received = 0
        while received < count and time.perf_counter() < deadline:
            answer = await self._redis.xread({topic: last_id}, count=10_000, block=FOLLOW_BLOCK_MS)
            for _stream, entries in answer:
                for entry_id, fields in entries:
                    on_value(fields[FIELD.encode()].decode())
                    last_id = entry_id
                    received += 1

    async def read_last(self, topic: str, count: int) -> None:
        if not await self._redis.xrevrange(topic, count=1):
            raise RuntimeError(f"stream {topic!r} is empty")

    async def close(self) -> None:
        await self._redis.aclose()


class RedisPeer(Peer):
    broker = "Redis Streams"

    def __init__(self, durability: Durability, appendfsync: str) -> None:
        super().__init__(durability, f"appendfsync {appendfsync}")
        self.appendfsync = appendfsync

    def unavailable_reason(self) -> str | None:
        if redis_server_binary() is None:
            return "redis-server not found (apt-get install redis-server)"
        try:
            require("redis", "redis")
        except RuntimeError as exc:
            return str(exc)
        return None

    def server(self) -> ServerProcess:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")

        def command(port: int, data_dir: Path) -> list[str]:
            return [
                binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
                "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
                "--daemonize", "no", "--loglevel", "warning",
            ]  # fmt: skip

        return ServerProcess("redis", command)

    async def connect(self, server: ServerProcess) -> Session:
        redis_asyncio = require("redis.asyncio", "redis")
        client = redis_asyncio.Redis(
            host="127.0.0.1", port=server.port, socket_timeout=SOCKET_TIMEOUT_S
        )
        await client.ping()
        return RedisSession(client)

    def versions(self) -> dict[str, str]:
        binary = redis_server_binary()
        server = "missing"
        if binary is not None:
            completed = subprocess.run(
                [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
            )
            server = completed.stdout.split(" v=")[-1].split()[0] if completed.stdout else "?"
        return {"redis-server": server, "redis-py": metadata.version("redis")}
