"""Browsing a topic like a log: one partition or all merged by timestamp, either direction.

A page is a *direction* and a *cursor* (partition → offset, the same
``"0:120,1:98"`` text as the tail cursor):

- ``newest``: newest first; the cursor is each partition's exclusive upper
  bound (by default its end offset), and the next page continues below it;
- ``forward``: oldest first from a position; the cursor is each partition's
  next offset to show.  A forward page starts at the log start ("Oldest"),
  at an offset, or at the first record at or after a time.

Each partition contributes at most ``size`` records to a page; they are
merged by ``(timestamp, partition, offset)`` and the first ``size`` kept, and
the cursor moves past exactly the records shown, so no record is skipped or
shown twice between pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from minimq.client import Client, PartitionInfo, Record, TopicInfo
from minimq.errors import InvalidRequest

Direction = Literal["newest", "forward"]
DIRECTIONS: tuple[Direction, ...] = ("newest", "forward")


@dataclass(frozen=True)
class BrowseRequest:
    """What the browse form asks for (``partition`` None: all partitions)."""

    partition: int | None
    direction: Direction
    size: int
    cursor: dict[int, int] | None = None
    from_offset: int | None = None
    from_time: int | None = None


@dataclass(frozen=True)
class BrowsePage:
    """A page of records in display order, and the cursor of the next page (None: no more)."""

    info: TopicInfo
    request: BrowseRequest
    records: list[Record]
    next_cursor: dict[int, int] | None
    notice: str = ""


def selected_partitions(info: TopicInfo, partition: int | None) -> list[PartitionInfo]:
    if partition is None:
        return list(info.partition_info)
    for part in info.partition_info:
        if part.partition == partition:
            return [part]
    raise InvalidRequest(
        f"topic {info.name!r} has no partition {partition} (it has {info.partitions})"
    )


def _order(record: Record) -> tuple[int, int, int]:
    return (record.timestamp, record.partition, record.offset)


def browse(client: Client, topic: str, request: BrowseRequest, *, now_ms: int) -> BrowsePage:
    info = client.describe_topic(topic)
    parts = selected_partitions(info, request.partition)
    if request.direction == "forward":
        return _forward(client, info, parts, request, now_ms)
    return _newest(client, info, parts, request)


def _forward(
    client: Client,
    info: TopicInfo,
    parts: list[PartitionInfo],
    request: BrowseRequest,
    now_ms: int,
) -> BrowsePage:
    candidates: list[Record] = []
    positions: dict[int, int] = {}
    for part in parts:
        if request.cursor is not None:
            position = request.cursor.get(part.partition, part.start_offset)
        elif request.from_offset is not None:
            position = request.from_offset
        else:
            position = part.start_offset
        position = max(part.start_offset, min(position, part.end_offset))
        positions[part.partition] = position
        if request.cursor is None and request.from_time is not None:
            result = client.fetch(
                info.name, part.partition, timestamp=request.from_time, limit=request.size
            )
            positions[part.partition] = (
                result.records[0].offset if result.records else part.end_offset
            )
        elif position < part.end_offset:
            result = client.fetch(info.name, part.partition, offset=position, limit=request.size)
        else:
            continue
        candidates.extend(result.records)
    candidates.sort(key=_order)
    shown = candidates[: request.size]
    for record in shown:
        positions[record.partition] = record.offset + 1
    more = any(positions[p.partition] < p.end_offset for p in parts)
    notice = ""
    if not shown and request.from_time is not None and request.cursor is None:
        notice = (
            "That time is in the future: no records yet."
            if request.from_time > now_ms
            else "No records at or after that time yet."
        )
    return BrowsePage(
        info=info,
        request=request,
        records=shown,
        next_cursor=positions if more else None,
        notice=notice,
    )


def _newest(
    client: Client, info: TopicInfo, parts: list[PartitionInfo], request: BrowseRequest
) -> BrowsePage:
    candidates: list[Record] = []
    bounds: dict[int, int] = {}
    for part in parts:
        if request.cursor is not None:
            bound = request.cursor.get(part.partition, part.end_offset)
        elif request.from_offset is not None:
            bound = request.from_offset + 1
        else:
            bound = part.end_offset
        bound = max(part.start_offset, min(bound, part.end_offset))
        bounds[part.partition] = bound
        first = max(part.start_offset, bound - request.size)
        if first < bound:
            result = client.fetch(info.name, part.partition, offset=first, limit=bound - first)
            candidates.extend(r for r in result.records if r.offset < bound)
    candidates.sort(key=_order, reverse=True)
    shown = candidates[: request.size]
    for record in shown:
        bounds[record.partition] = min(bounds[record.partition], record.offset)
    more = any(bounds[p.partition] > p.start_offset for p in parts)
    return BrowsePage(
        info=info, request=request, records=shown, next_cursor=bounds if more else None
    )
