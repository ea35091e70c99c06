"""A raw Kafka connection for protocol tests: one request of a chosen version, one answer.

Requests and responses are kafka-python's generated protocol classes (its
schemas come from Kafka's own JSON message specs), not the broker's codec,
so a codec bug on either side shows up as a mismatch rather than cancelling
out.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from typing import Any

import kafka.protocol.admin
import kafka.protocol.consumer
import kafka.protocol.metadata


class RawKafka:
    """One TCP connection; requests of one connection are answered in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._correlation = itertools.count(1)
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, host: str, port: int) -> RawKafka:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, request: Any, version: int, timeout: float = 60.0) -> Any:
        """Send ``request`` at ``version``; the decoded response of that version."""
        correlation_id = next(self._correlation)
        request.API_VERSION = version
        request.with_header(correlation_id=correlation_id, client_id="raw-test")
        response_class = _response_class(request)
        async with self._lock:
            self._writer.write(bytes(request.encode(header=True, framed=True)))
            await self._writer.drain()
            size = struct.unpack(">i", await asyncio.wait_for(self._reader.readexactly(4), timeout))
            frame = await asyncio.wait_for(self._reader.readexactly(size[0]), timeout)
        (answered,) = struct.unpack(">i", frame[:4])
        assert answered == correlation_id, f"answer to {answered}, asked {correlation_id}"
        return response_class.decode(frame[4:], version=version)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


def _response_class(request: Any) -> Any:
    name = type(request).__name__.removesuffix("Request") + "Response"
    for module in (kafka.protocol.consumer, kafka.protocol.metadata, kafka.protocol.admin):
        found = getattr(module, name, None)
        if found is not None:
            return found
    raise LookupError(f"no response class for {type(request).__name__}")
