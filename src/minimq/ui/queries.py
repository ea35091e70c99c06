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

from dataclasses import dataclass, field

from minimq.client import Client, GroupInfo, PartitionInfo, Record, TopicInfo
from minimq.errors import InvalidRequest
from minimq.ui.records import matches

RATE_WINDOW_MS = 60_000
FILTER_CHUNK = 500


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
    return TailBatch(records=records, cursor=next_cursor)


@dataclass(frozen=True)
class TopicOverview:
    """A dashboard card: totals, the rate over the last minute, the recent records."""

    info: TopicInfo
    rate_per_minute: int
    recent: list[Record]

    @property
    def latest(self) -> Record | None:
        return self.recent[-1] if self.recent else None


def _count_since(
    client: Client, topic: str, part: PartitionInfo, recent: list[Record], since_ms: int
) -> int:
    # The recent records answer the question when they reach back past the
    # window (or to the start of the log); otherwise ask the broker where the
    # window starts, by timestamp.
    if recent and (recent[0].timestamp < since_ms or recent[0].offset == part.start_offset):
        return sum(1 for r in recent if r.timestamp >= since_ms)
    located = client.fetch(topic, part.partition, timestamp=since_ms, limit=1)
    first = located.records[0].offset if located.records else part.end_offset
    return part.end_offset - first


def topic_overview(client: Client, info: TopicInfo, *, now_ms: int, recent: int) -> TopicOverview:
    """Totals of ``info`` plus, per partition, its ``recent`` last records and minute rate."""
    records: list[Record] = []
    rate = 0
    for part in info.partition_info:
        if part.end_offset == part.start_offset:
            continue
        first = max(part.start_offset, part.end_offset - recent)
        fetched = client.fetch(info.name, part.partition, offset=first, limit=recent).records
        rate += _count_since(client, info.name, part, fetched, now_ms - RATE_WINDOW_MS)
        records.extend(fetched)
    records.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
    return TopicOverview(info=info, rate_per_minute=rate, recent=records[-recent:])


@dataclass(frozen=True)
class BrowsePage:
    """A page of one partition, newest first, and the offsets of its neighbours.

    ``top`` is the newest offset the page may show; ``older``/``newer`` are the
    ``top`` of the adjacent pages (``None`` at either end of the log).
    """

    info: TopicInfo
    partition: int
    start_offset: int
    end_offset: int
    top: int
    size: int
    records: list[Record]
    older: int | None
    newer: int | None
    scanned: int
    text_filter: str = ""
    complete: bool = field(default=True)


def _partition(info: TopicInfo, partition: int) -> PartitionInfo:
    for part in info.partition_info:
        if part.partition == partition:
            return part
    raise InvalidRequest(
        f"topic {info.name!r} has no partition {partition} (it has {info.partitions})"
    )


def browse(
    client: Client,
    topic: str,
    partition: int,
    *,
    top: int | None,
    size: int,
    text_filter: str,
    scan_limit: int,
) -> BrowsePage:
    """The page of ``size`` records at or below offset ``top`` (default: the newest).

    With a ``text_filter`` the page holds up to ``size`` *matching* records,
    found by scanning backwards at most ``scan_limit`` records; ``complete``
    is false when the scan stopped at that bound before the start of the log.
    """
    info = client.describe_topic(topic)
    part = _partition(info, partition)
    newest = part.end_offset - 1
    top = newest if top is None else _clamp(top, part.start_offset, newest)
    found: list[Record] = []
    low = top + 1
    scanned = 0
    while low > part.start_offset and len(found) < size and scanned < scan_limit:
        chunk = size if not text_filter else min(FILTER_CHUNK, scan_limit - scanned)
        first = max(part.start_offset, low - chunk)
        result = client.fetch(topic, partition, offset=first, limit=low - first)
        batch = [r for r in result.records if r.offset < low]
        if not batch:
            break
        scanned += len(batch)
        low = batch[0].offset
        kept = [r for r in batch if matches(r, text_filter)] if text_filter else batch
        found.extend(reversed(kept))
    records = found[:size]
    if len(found) > size:
        # The last chunk matched more than fits: continue below the last shown.
        low = records[-1].offset
    older = low - 1 if low > part.start_offset else None
    newer = min(top + size, newest) if top < newest else None
    return BrowsePage(
        info=info,
        partition=partition,
        start_offset=part.start_offset,
        end_offset=part.end_offset,
        top=top,
        size=size,
        records=records,
        older=older,
        newer=newer,
        scanned=scanned,
        text_filter=text_filter,
        complete=low <= part.start_offset or len(records) >= size,
    )


def offset_at_time(client: Client, topic: str, partition: int, timestamp_ms: int) -> int | None:
    """The first offset with a timestamp at or after ``timestamp_ms``, if any."""
    result = client.fetch(topic, partition, timestamp=timestamp_ms, limit=1)
    return result.records[0].offset if result.records else None


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
