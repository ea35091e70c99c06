"""The topic table's data: one small summary of every topic, shared by every open dashboard.

Every dashboard polls ``/api/summary`` once a second.  Computing it asks the
broker for the topic list, the group list, and for each partition its last
record (for "last record time") and where the last minute starts (for the
produce rate).  :class:`SummaryCache` makes that cost independent of how many
tabs are open and of how many topics sit idle:

- the summary is computed at most once per ``max_age_s`` per UI process,
  whatever the number of tabs (waitress threads wait for the one refresh);
- a partition's last record is fetched again only when its end offset moved;
- a topic's minute rate is recomputed only when its end offsets moved (at most
  every ``RATE_REFRESH_S``) or while records are ageing out of the window;
- the answer carries an ETag, so a tab whose table is current gets a
  bodiless ``304``.

Thread-safe: one lock guards the cached state; the refresh runs under it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

import orjson

from minimq.client import Client, GroupSummary, TopicInfo

RATE_WINDOW_MS = 60_000
RATE_REFRESH_S = 5.0


class GroupLag(TypedDict):
    group: str
    lag: int


class TopicRow(TypedDict):
    """One row of the topic table."""

    name: str
    partitions: int
    messages: int
    bytes: int
    rate_per_minute: int
    last_timestamp: int | None
    groups: list[GroupLag]
    lag: int


@dataclass
class _RateSample:
    ends: tuple[int, ...]
    computed_at: float
    rate: int


@dataclass(frozen=True)
class Summary:
    """A computed summary: the rows, their JSON body and its ETag."""

    rows: list[TopicRow]
    body: bytes
    etag: str
    computed_at: float


@dataclass
class SummaryCache:
    """The shared, lazily refreshed topic summary (see the module docstring)."""

    max_age_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _summary: Summary | None = None
    _last_records: dict[tuple[str, int], tuple[int, int | None]] = field(default_factory=dict)
    _rates: dict[str, _RateSample] = field(default_factory=dict)

    def get(self, client: Client) -> Summary:
        """The current summary, recomputed when older than ``max_age_s``."""
        with self._lock:
            summary = self._summary
            if summary is None or self.clock() - summary.computed_at >= self.max_age_s:
                summary = self._compute(client)
                self._summary = summary
            return summary

    def _compute(self, client: Client) -> Summary:
        topics = client.list_topics()
        lags = _lag_by_topic(client, client.list_groups())
        now_ms = int(time.time() * 1000)
        rows = [
            TopicRow(
                name=info.name,
                partitions=info.partitions,
                messages=info.messages,
                bytes=info.bytes,
                rate_per_minute=self._rate(client, info, now_ms),
                last_timestamp=self._last_timestamp(client, info),
                groups=lags.get(info.name, []),
                lag=sum(g["lag"] for g in lags.get(info.name, [])),
            )
            for info in sorted(topics, key=lambda t: t.name)
        ]
        self._forget_missing({info.name for info in topics})
        body = orjson.dumps({"topics": rows})
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        return Summary(rows=rows, body=body, etag=etag, computed_at=self.clock())

    def _last_timestamp(self, client: Client, info: TopicInfo) -> int | None:
        latest: int | None = None
        for part in info.partition_info:
            key = (info.name, part.partition)
            cached = self._last_records.get(key)
            if cached is None or cached[0] != part.end_offset:
                stamp = None
                if part.end_offset > part.start_offset:
                    fetched = client.fetch(
                        info.name, part.partition, offset=part.end_offset - 1, limit=1
                    ).records
                    stamp = fetched[0].timestamp if fetched else None
                cached = (part.end_offset, stamp)
                self._last_records[key] = cached
            if cached[1] is not None and (latest is None or cached[1] > latest):
                latest = cached[1]
        return latest

    def _rate(self, client: Client, info: TopicInfo, now_ms: int) -> int:
        ends = tuple(p.end_offset for p in info.partition_info)
        sample = self._rates.get(info.name)
        now = self.clock()
        # Idle and empty-windowed stays cached; anything else (new records, or
        # records ageing out of the window) is recounted every RATE_REFRESH_S.
        if sample is not None and (
            now - sample.computed_at < RATE_REFRESH_S or (sample.ends == ends and sample.rate == 0)
        ):
            return sample.rate
        rate = 0
        for part in info.partition_info:
            if part.end_offset == part.start_offset:
                continue
            located = client.fetch(
                info.name, part.partition, timestamp=now_ms - RATE_WINDOW_MS, limit=1
            ).records
            first = located[0].offset if located else part.end_offset
            rate += part.end_offset - first
        self._rates[info.name] = _RateSample(ends=ends, computed_at=now, rate=rate)
        return rate

    def _forget_missing(self, names: set[str]) -> None:
        for key in [k for k in self._last_records if k[0] not in names]:
            del self._last_records[key]
        for name in [n for n in self._rates if n not in names]:
            del self._rates[name]


def _lag_by_topic(client: Client, groups: list[GroupSummary]) -> dict[str, list[GroupLag]]:
    """Each topic's groups with their lag on it.

    A group reading one topic has all its lag there (the list says so); only
    groups reading several topics are described to split it.
    """
    found: dict[str, list[GroupLag]] = {}
    for summary in groups:
        if len(summary.topics) == 1:
            found.setdefault(summary.topics[0], []).append(
                GroupLag(group=summary.group, lag=summary.total_lag)
            )
            continue
        per_topic: dict[str, int] = {}
        for offset in client.describe_group(summary.group).offsets:
            per_topic[offset.topic] = per_topic.get(offset.topic, 0) + offset.lag
        for topic, lag in per_topic.items():
            found.setdefault(topic, []).append(GroupLag(group=summary.group, lag=lag))
    return found
