"""What the pages ask the broker, built only from :class:`minimq.client.Client` calls.

Every function here takes an open client, makes a bounded number of requests
and returns plain data for a view.  None keeps state between calls: the UI may
run many threads (waitress) or processes, and the browser carries the little
state a live page needs (the tail *cursor*, see :func:`parse_cursor`).

Offsets follow the broker: ``start_offset`` is the first offset still stored,
``end_offset`` the next offset to be written, so a partition holds
``[start_offset, end_offset)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from minimq.client import Client, GroupInfo, Record
from minimq.errors import InvalidRequest


def parse_cursor(text: str) -> dict[int, int]:
    """Parse a tail cursor ``"0:120,1:98"`` (partition → next offset to show)."""
    cursor: dict[int, int] = {}
    if not text:
        return cursor
    for part in text.split(","):
        partition, sep, offset = part.partition(":")
        if not sep or not partition.isdigit() or not offset.isdigit():
            raise InvalidRequest(f"invalid cursor {text!r}: expected partition:offset,...")
        cursor[int(partition)] = int(offset)
    return cursor


def format_cursor(cursor: dict[int, int]) -> str:
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(cursor.items()))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


@dataclass(frozen=True)
class TailBatch:
    """New records of every partition, oldest first, and where to continue."""

    records: list[Record]
    cursor: dict[int, int]
    messages: int


def tail(
    client: Client, topic: str, cursor: dict[int, int], *, backlog: int, limit: int
) -> TailBatch:
    """Records after ``cursor``; a partition missing from it starts ``backlog`` before its end.

    A cursor outside the partition (retention removed records, or the broker
    lost its data) is clamped, so a long-open page keeps following the topic.
    """
    info = client.describe_topic(topic)
    records: list[Record] = []
    next_cursor: dict[int, int] = {}
    for part in info.partition_info:
        position = cursor.get(part.partition, part.end_offset - backlog)
        position = _clamp(position, part.start_offset, part.end_offset)
        next_cursor[part.partition] = position
        if position == part.end_offset:
            continue
        result = client.fetch(topic, part.partition, offset=position, limit=limit)
        records.extend(result.records)
        next_cursor[part.partition] = result.next_offset
    records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
    return TailBatch(records=records, cursor=next_cursor, messages=info.messages)


def read_record(client: Client, topic: str, partition: int, offset: int) -> Record | None:
    """The record at exactly ``(partition, offset)``, or ``None`` when it is gone."""
    result = client.fetch(topic, partition, offset=offset, limit=1)
    if result.records and result.records[0].offset == offset:
        return result.records[0]
    return None


@dataclass(frozen=True)
class ConsumeResult:
    """What "consume next N" handed out and where the group stands afterwards."""

    group: str
    topic: str
    records: list[Record]
    positions: dict[int, int]
    group_info: GroupInfo


def consume_next(client: Client, group: str, topic: str, count: int) -> ConsumeResult:
    """Take the next ``count`` records for ``group`` and commit past them (at-most-once).

    A read without membership: the UI never joins, so it never takes
    partitions from (or forces a rebalance on) real consumers. The broker
    allows it only while the group has no live members, else GroupHasMembers.
    """
    result = client.group_fetch(group, topic, limit=count, commit=True)
    return ConsumeResult(
        group=group,
        topic=topic,
        records=result.records,
        positions=result.positions,
        group_info=client.describe_group(group),
    )
