"""Server-side search: a bounded, resumable scan of a topic, and streamed exports.

The UI process scans through the broker's fetch API, each partition in offset
order, up to four partitions at once. Pages are fetched undecoded
(:meth:`~minimq.client.Client.fetch_raw`); a page whose bytes cannot hold a
match (:mod:`minimq.ui.page_filter`) is counted as scanned without building
its records, which was most of a search's time. One call of :func:`scan` stops
at whichever comes first: ``max_matches`` matches, ``max_scanned`` records, or
``budget_s`` seconds; it returns a cursor (partition → next offset to scan,
the tail cursor's text form) from which the next call continues, and how much
of the range it has covered ("scanned X of Y"). The browser calls again until
the scan is done or it has enough, so no request holds a thread for long and a
search over millions of records still reports progress.

A :class:`SearchQuery` combines, all optional and all required to match:

- ``text``: case-insensitive substring of key, headers or value text;
- ``key``: the key exactly, or as a prefix (``key_mode="prefix"``);
- ``field``: a JSON field condition ``value.sensor_id = "t-1"`` (the right
  side is JSON when it parses, else plain text compared with a string field);
- ``from_time`` / ``until_time``: the range of record timestamps, found as
  offsets once (the log is in offset order, timestamps mostly follow it).

:func:`stream_matches` runs the same scan without limits for the exports,
yielding matches as they are found.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from minimq.client import Client, PartitionInfo, Record, TopicInfo
from minimq.errors import InvalidRequest
from minimq.ui.browse import selected_partitions
from minimq.ui.page_filter import PageFilter
from minimq.ui.records import matches

KeyMode = Literal["exact", "prefix"]
SCAN_CHUNK = 10_000
SCAN_CHUNK_BYTES = 8 * 1024 * 1024
SCAN_THREADS = 4
MISSING = object()


@dataclass(frozen=True)
class FieldCondition:
    """``value.a.b = literal``: the path below the value and the expected JSON value."""

    path: tuple[str, ...]
    expected: Any

    @classmethod
    def parse(cls, text: str) -> FieldCondition:
        left, sep, right = text.partition("=")
        path = left.strip().split(".")
        if not sep or len(path) < 2 or path[0] != "value" or not all(path[1:]):
            raise InvalidRequest(
                f'a field filter reads value.<field> = <value>, e.g. value.sensor_id = "t-1"; '
                f"got {text!r}"
            )
        literal = right.strip()
        try:
            expected: Any = json.loads(literal)
        except ValueError:
            expected = literal
        return cls(path=tuple(path[1:]), expected=expected)

    def holds(self, value: Any) -> bool:
        for name in self.path:
            if not isinstance(value, dict):
                return False
            value = value.get(name, MISSING)
        if isinstance(self.expected, bool) or isinstance(value, bool):
            return value is self.expected
        return bool(value == self.expected)


@dataclass(frozen=True)
class SearchQuery:
    partition: int | None = None
    text: str = ""
    key: str = ""
    key_mode: KeyMode = "exact"
    field: FieldCondition | None = None
    from_time: int | None = None
    until_time: int | None = None

    def matcher(self) -> Callable[[Record], bool]:
        checks: list[Callable[[Record], bool]] = []
        if self.key:
            key, prefix = self.key, self.key_mode == "prefix"
            checks.append(
                (lambda r: r.key is not None and r.key.startswith(key))
                if prefix
                else (lambda r: r.key == key)
            )
        if self.field is not None:
            condition = self.field
            checks.append(lambda r: condition.holds(r.value))
        if self.text:
            text = self.text
            checks.append(lambda r: matches(r, text))
        return lambda record: all(check(record) for check in checks)

    def page_filter(self) -> PageFilter:
        """What rules out a fetched page before its records are built."""
        return PageFilter.build(
            key=self.key,
            key_prefix=self.key_mode == "prefix",
            field_name=self.field.path[-1] if self.field is not None else None,
            field_value=self.field.expected if self.field is not None else None,
            text=self.text,
        )

    @property
    def filtered(self) -> bool:
        return bool(self.key or self.field or self.text)


@dataclass(frozen=True)
class ScanRange:
    """Per selected partition, the offsets ``[first, end)`` the query covers."""

    first: dict[int, int]
    end: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.end[p] - self.first[p] for p in self.first)

    def scanned(self, cursor: dict[int, int]) -> int:
        return sum(
            max(0, min(cursor.get(p, first), self.end[p]) - first)
            for p, first in self.first.items()
        )


@dataclass(frozen=True)
class ScanResult:
    records: list[Record]
    cursor: dict[int, int]
    scanned: int
    total: int
    done: bool


def _offset_at(client: Client, topic: str, part: PartitionInfo, timestamp: int) -> int:
    located = client.fetch(topic, part.partition, timestamp=timestamp, limit=1).records
    return located[0].offset if located else part.end_offset


def scan_range(client: Client, info: TopicInfo, query: SearchQuery) -> ScanRange:
    first: dict[int, int] = {}
    end: dict[int, int] = {}
    for part in selected_partitions(info, query.partition):
        low, high = part.start_offset, part.end_offset
        if query.from_time is not None:
            low = _offset_at(client, info.name, part, query.from_time)
        if query.until_time is not None:
            high = _offset_at(client, info.name, part, query.until_time + 1)
        first[part.partition] = low
        end[part.partition] = max(low, high)
    return ScanRange(first=first, end=end)


def _pages(
    client: Client, topic: str, partition: int, span: tuple[int, int], page_filter: PageFilter
) -> Iterator[tuple[list[Record], int]]:
    """The pages of ``span`` (offsets ``[start, end)``): the records that may match, and the
    offset after the page.

    A page the filter rules out yields no records: its bytes were searched,
    its records never built.
    """
    position, end = span
    while position < end:
        page = client.fetch_raw(
            topic,
            partition,
            offset=position,
            limit=min(SCAN_CHUNK, end - position),
            max_bytes=SCAN_CHUNK_BYTES,
        )
        if page.next_offset <= position:
            return
        after = min(page.next_offset, end)
        if page_filter.rules_out(page.body):
            yield [], after
        else:
            yield [r for r in page.records() if r.offset < end], after
        position = after


class _Limits:
    """The three limits of one :func:`scan` call, shared by its partition threads."""

    def __init__(self, max_matches: int, max_scanned: int, budget_s: float) -> None:
        self._lock = threading.Lock()
        self._matches_left = max_matches
        self._scanned_left = max_scanned
        self._deadline = time.monotonic() + budget_s

    def take_match(self) -> bool:
        """Claim a place for one more match; False when the result is full."""
        with self._lock:
            if self._matches_left <= 0:
                return False
            self._matches_left -= 1
            return True

    @property
    def full(self) -> bool:
        with self._lock:
            return self._matches_left <= 0

    def count_scanned(self, records: int) -> None:
        with self._lock:
            self._scanned_left -= records

    @property
    def reached(self) -> bool:
        with self._lock:
            return (
                self._matches_left <= 0
                or self._scanned_left <= 0
                or time.monotonic() >= self._deadline
            )


def _scan_partition(
    client: Client,
    topic: str,
    partition: int,
    span: tuple[int, int],
    *,
    query: SearchQuery,
    limits: _Limits,
) -> tuple[list[Record], int]:
    """The matches from ``span[0]`` on and the offset to continue from, within ``limits``."""
    keep = query.matcher()
    found: list[Record] = []
    position = span[0]
    if limits.reached:
        return found, position
    for records, after in _pages(client, topic, partition, span, query.page_filter()):
        for record in records:
            if keep(record):
                if not limits.take_match():
                    # Another partition filled the result: this match is the next call's.
                    return found, record.offset
                found.append(record)
                if limits.full:
                    return found, record.offset + 1
        limits.count_scanned(after - position)
        position = after
        if limits.reached:
            break
    return found, position


def scan(
    client: Client,
    topic: str,
    query: SearchQuery,
    cursor: dict[int, int] | None,
    *,
    max_matches: int,
    max_scanned: int,
    budget_s: float,
) -> ScanResult:
    """Scan from ``cursor`` (None: the start of the range) within the three limits.

    The partitions are scanned side by side (up to :data:`SCAN_THREADS` at
    once), so the broker serves one partition's next page while this process
    searches another's; the limits are shared, and each partition's cursor
    is exactly where its scan stopped, so the next call misses nothing and
    finds nothing twice.
    """
    info = client.describe_topic(topic)
    bounds = scan_range(client, info, query)
    position = {p: max(first, (cursor or {}).get(p, first)) for p, first in bounds.first.items()}
    limits = _Limits(max_matches, max_scanned, budget_s)
    pending = sorted(p for p in position if position[p] < bounds.end[p])
    found: list[Record] = []
    if pending:
        with ThreadPoolExecutor(max_workers=min(SCAN_THREADS, len(pending))) as pool:
            futures = {
                p: pool.submit(
                    _scan_partition,
                    client,
                    topic,
                    p,
                    (position[p], bounds.end[p]),
                    query=query,
                    limits=limits,
                )
                for p in pending
            }
            for partition, future in futures.items():
                matches_here, position[partition] = future.result()
                found.extend(matches_here)
    done = all(position[p] >= bounds.end[p] for p in position)
    return ScanResult(
        records=found,
        cursor=position,
        scanned=bounds.scanned(position),
        total=bounds.total,
        done=done,
    )


def stream_matches(client: Client, topic: str, query: SearchQuery) -> Iterator[Record]:
    """Every matching record of the range, partition by partition, as the scan finds it."""
    info = client.describe_topic(topic)
    bounds = scan_range(client, info, query)
    keep = query.matcher() if query.filtered else None
    page_filter = query.page_filter()
    for partition in sorted(bounds.first):
        span = (bounds.first[partition], bounds.end[partition])
        for records, _ in _pages(client, topic, partition, span, page_filter):
            yield from (records if keep is None else filter(keep, records))
