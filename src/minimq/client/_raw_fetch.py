"""A fetch answer kept as the broker sent it: the body bytes plus its offsets.

For scanning a partition (the UI's search): the caller can look for a byte
string in a whole page before paying for its records, and build them with
:meth:`RawFetchPage.records` only for pages that may hold what it looks for.

The fetch answer ends with its envelope after the records array
(``],"next_offset":N,"high_watermark":M,"start_offset":S}``, ``docs/http-api.md``
"Fetch"), so the offsets are read from the body's tail without decoding the
records; a body in any other shape is decoded whole instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from minimq.client._models import Record, _require, records_from_json
from minimq.errors import MiniMQError

_ENVELOPE_TAIL = b'],"next_offset":'


@dataclass(frozen=True, slots=True)
class RawFetchPage:
    """One partition's fetch answer, undecoded: ``body`` is the JSON text of a FetchResponse."""

    topic: str
    partition: int
    body: bytes
    next_offset: int
    high_watermark: int
    start_offset: int

    @classmethod
    def from_body(cls, topic: str, partition: int, body: bytes) -> RawFetchPage:
        at = body.rfind(_ENVELOPE_TAIL)
        try:
            # The tail holds only integers after the records, so it parses on its own.
            tail = orjson.loads(b"{" + body[at + 2 :]) if at >= 0 else orjson.loads(body)
            data = _require(tail, "next_offset", "high_watermark")
            return cls(
                topic=topic,
                partition=partition,
                body=body,
                next_offset=int(data["next_offset"]),
                high_watermark=int(data["high_watermark"]),
                start_offset=int(data.get("start_offset", 0)),
            )
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            raise MiniMQError(f"unexpected fetch answer from the broker: {body[-200:]!r}") from exc

    def records(self) -> list[Record]:
        """The page's records, decoded (as :meth:`Client.fetch <minimq.client.Client.fetch>`)."""
        try:
            payload = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise MiniMQError(f"broker sent invalid JSON: {self.body[:200]!r}") from exc
        return records_from_json(_require(payload, "records")["records"])
