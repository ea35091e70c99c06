"""The Kafka listener: an asyncio server in the broker process, beside HTTP.

:class:`KafkaListener` binds ``--host`` and ``--kafka-port`` when the broker
starts and is stopped before the broker closes its storage. Each accepted
connection is served by a :class:`~minimq.kafka.connection.KafkaConnection`.
Connections are capped as the HTTP side's are: at most ``max_connections``
in all and ``max_connections_per_address`` from one client address; one over
a cap is closed at once, with a WARNING.

Shutdown (:meth:`KafkaListener.stop`): stop accepting, stop reading, let the
requests already read finish and be answered (bounded by the timeout; the
broker ends long-polls at the same time), then abort what is left.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
from collections.abc import Mapping

from minimq.core import Broker
from minimq.kafka.apis import APIS
from minimq.kafka.byte_budget import ByteBudget
from minimq.kafka.connection import KafkaConnection
from minimq.kafka.registry import ApiHandler
from minimq.kafka.settings import KafkaSettings

log = logging.getLogger("minimq.kafka")

STREAM_BUFFER_BYTES = 64 * 1024


class KafkaListener:
    """Serves the Kafka protocol for ``broker`` on ``settings.host``:``settings.port``."""

    def __init__(
        self,
        broker: Broker,
        settings: KafkaSettings,
        *,
        body_timeout_s: float = 30.0,
        write_timeout_s: float = 30.0,
        apis: Mapping[int, ApiHandler] | None = None,
    ) -> None:
        self._broker = broker
        self._settings = settings
        self._apis = APIS if apis is None else apis
        self._budget = ByteBudget(settings.request_buffer_bytes)
        self._body_timeout_s = body_timeout_s
        self._write_timeout_s = write_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: dict[KafkaConnection, asyncio.Task[None]] = {}
        self._per_address: collections.Counter[str] = collections.Counter()
        self.port = settings.port
        self.advertised = settings.advertised(settings.port)

    async def start(self) -> None:
        """Bind and listen (``OSError`` if the port cannot be had)."""
        self._server = await asyncio.start_server(
            self._accept,
            self._settings.host,
            self._settings.port,
            limit=STREAM_BUFFER_BYTES,
            backlog=1024,
            reuse_address=True,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.advertised = self._settings.advertised(self.port)
        if self._settings.advertises_wildcard_guess:
            log.warning(
                "kafka: bound to %s; Metadata advertises host name %r. If clients cannot"
                " resolve it, set --kafka-advertised-host (e.g. the address they connect to)",
                self._settings.host,
                self.advertised[0],
            )
        log.info(
            "kafka listening on %s:%d (advertised %s:%d, SASL/PLAIN %s)",
            self._settings.host,
            self.port,
            *self.advertised,
            "required" if self._settings.token else "off",
        )

    async def stop(self, timeout_s: float) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in self._connections:
            connection.stop_reading()
        tasks = list(self._connections.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout_s)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = KafkaConnection(
            reader,
            writer,
            broker=self._broker,
            settings=self._settings,
            apis=self._apis,
            budget=self._budget,
            advertised=self.advertised,
            body_timeout_s=self._body_timeout_s,
            write_timeout_s=self._write_timeout_s,
        )
        refusal = self._over_cap(connection.host)
        if refusal:
            log.warning("kafka: refusing connection from %s: %s", connection.peer, refusal)
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[connection] = task
        self._per_address[connection.host] += 1
        try:
            await connection.serve()
        finally:
            del self._connections[connection]
            self._per_address[connection.host] -= 1
            if not self._per_address[connection.host]:
                del self._per_address[connection.host]

    def _over_cap(self, host: str) -> str | None:
        settings = self._settings
        if len(self._connections) >= settings.max_connections:
            return f"{settings.max_connections} connections open (--max-connections)"
        if self._per_address[host] >= settings.max_connections_per_address:
            return (
                f"{settings.max_connections_per_address} connections open from this address"
                " (--max-connections-per-address)"
            )
        return None
