"""Incremental decoder for the broker's ``text/event-stream`` of records.

Wire format (the HTML server-sent-events rules, reduced to what the broker sends)::

    event: record
    id: <partition>:<offset>
    data: <Record JSON>
    <blank line>                 dispatches the event
    : keep-alive                 comment line, every 15 s; ignored

Lines are fed one at a time (without their line ending); :meth:`SSEDecoder.feed`
returns a :class:`~minimq.client.Record` when a blank line completes a
``record`` event.  :meth:`SSEDecoder.feed_bytes` takes the raw body as it
arrives, in chunks of any size, and splits the lines itself (a line may be
longer than any read buffer: a record can be 1 MiB).  Not thread-safe: one
decoder per stream.
"""

from __future__ import annotations

import orjson

from minimq.client._models import Record
from minimq.errors import MiniMQError


class SSEDecoder:
    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._partial = bytearray()

    def feed_bytes(self, chunk: bytes) -> list[Record]:
        """The records completed by ``chunk`` (``\\n`` or ``\\r\\n`` line endings)."""
        buffer = self._partial
        buffer += chunk
        records: list[Record] = []
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            record = self.feed(buffer[start:end].removesuffix(b"\r").decode())
            if record is not None:
                records.append(record)
            start = end + 1
        del buffer[:start]
        return records

    def feed(self, line: str) -> Record | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> Record | None:
        event, data = self._event or "message", "\n".join(self._data)
        self._event, self._data = "", []
        if event != "record" or not data:
            return None
        try:
            return Record.from_json(orjson.loads(data))
        except orjson.JSONDecodeError as exc:
            raise MiniMQError(f"broker sent an invalid stream event: {data[:200]!r}") from exc
