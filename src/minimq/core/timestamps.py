"""Which producer timestamps a topic accepts: Kafka's ``message.timestamp.{before,after}.max.ms``.

Why.  Time retention deletes a segment once its *newest* record timestamp
is older than ``now - retention_ms``, and only ever a prefix of segments
(docs/storage-format.md, "Retention").  A record whose producer stamped it a
year ahead therefore keeps its segment, and every segment after it, for a
year past their retention.  Refusing timestamps more than ``after`` ahead of
broker time caps that: a segment then outlives its retention by at most
``after``.  The ``before`` bound refuses records so old that retention would
delete them at its next check.

Rule.  A produce request is refused whole (``InvalidTimestamp``, HTTP 400,
nothing stored) if any record's timestamp ``t`` has ``now - t > before`` or
``t - now > after``; the bounds themselves are accepted, as in Kafka.  A
record without a timestamp gets broker time when it is appended, so it always
passes.  Defaults are Kafka 4.0's: ``after`` one hour (KIP-1030), ``before``
unbounded (:data:`~minimq.core.topic_config.UNBOUNDED_MS`, Kafka's Long.MAX_VALUE).
A topic's own setting (``TopicConfig``) wins over the broker-wide default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from minimq.core.topic_config import UNBOUNDED_MS, TopicConfig
from minimq.errors import InvalidTimestamp

DEFAULT_BEFORE_MAX_MS: Final = UNBOUNDED_MS
DEFAULT_AFTER_MAX_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class TimestampBounds:
    """The broker-wide defaults, for topics that do not set their own bounds."""

    before_max_ms: int = DEFAULT_BEFORE_MAX_MS
    after_max_ms: int = DEFAULT_AFTER_MAX_MS


DEFAULT_BOUNDS: Final = TimestampBounds()


def check_timestamps(
    timestamps: Iterable[int | None],
    config: TopicConfig,
    now_ms: int,
    defaults: TimestampBounds = DEFAULT_BOUNDS,
) -> None:
    """Raise ``InvalidTimestamp`` unless every timestamp is within the topic's bounds of ``now_ms``.

    ``timestamps`` are the records' producer timestamps (``None``: none given).
    Pure: no clock, no I/O; the caller passes broker time.
    """
    # This runs for every produce.  A comprehension measured cheaper than set()
    # or filter() (about 15 ns a record, 10,000 records), and the common case,
    # no producer timestamps, ends right after it.
    stamped = [stamp for stamp in timestamps if stamp is not None]
    if not stamped:
        return
    before = config.message_timestamp_before_max_ms
    if before is None:
        before = defaults.before_max_ms
    after = config.message_timestamp_after_max_ms
    if after is None:
        after = defaults.after_max_ms
    oldest = min(stamped)
    if now_ms - oldest > before:
        raise InvalidTimestamp(
            f"record timestamp {oldest} is {now_ms - oldest} ms before broker time {now_ms}; "
            f"this topic accepts at most {before} ms (message_timestamp_before_max_ms)"
        )
    newest = max(stamped)
    if newest - now_ms > after:
        raise InvalidTimestamp(
            f"record timestamp {newest} is {newest - now_ms} ms after broker time {now_ms}; "
            f"this topic accepts at most {after} ms (message_timestamp_after_max_ms)"
        )
