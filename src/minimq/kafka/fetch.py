"""Fetch (key 1), versions 4-11: stored RecordBatches as bytes, long-polled.

* Whole batches: a fetch offset inside a batch returns that whole batch (the
  client drops the records before its offset), and the first batch is
  returned even when it alone exceeds the byte limits, or a consumer could
  never get past it (KIP-74). Later partitions get only what still fits the
  response's ``max_bytes``, itself capped at :data:`FETCH_MAX_BYTES`.
* Long-poll: with less than ``min_bytes`` available, the fetch waits up to
  ``max_wait_ms`` on the same notification as HTTP long-polls
  (``Broker.wait_for_records``) for records beyond the high watermarks it saw.
* Fetch sessions (KIP-227) are declined: every answer has session_id 0, so
  clients send full requests; a request naming a session gets
  FETCH_SESSION_ID_NOT_FOUND. No preferred read replica (-1); the isolation
  level is moot without transactions.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from minimq.errors import MiniMQError
from minimq.kafka.context import RequestContext
from minimq.kafka.errors import error_code_for
from minimq.kafka.registry import ApiHandler, api
from minimq.kafka.settings import FETCH_MAX_BYTES

NO_SESSION = 0


@dataclass(slots=True)
class _PartitionRead:
    topic: str
    partition: int
    offset: int
    max_bytes: int
    error: ErrorCode = ErrorCode.none
    records: bytes = b""
    high_watermark: int = -1
    log_start_offset: int = -1


@api(1, 4, 11)
async def fetch(request: Any, ctx: RequestContext) -> Any:
    if getattr(request, "session_id", NO_SESSION) != NO_SESSION:
        return ctx.response(
            throttle_time=datetime.timedelta(0),
            error_code=ErrorCode.fetch_session_id_not_found,
            session_id=NO_SESSION,
            responses=[],
        )
    reads = [
        _PartitionRead(topic.topic, p.partition, p.fetch_offset, p.partition_max_bytes)
        for topic in request.topics
        for p in topic.partitions
    ]
    limit = max(0, min(request.max_bytes, FETCH_MAX_BYTES))
    deadline = time.monotonic() + max(0.0, request.max_wait.total_seconds())
    total = _read_all(ctx, reads, limit)
    while total < request.min_bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        seen = {
            (r.topic, r.partition): max(r.offset, r.high_watermark)
            for r in reads
            if r.error is ErrorCode.none
        }
        if not seen:
            break
        await ctx.broker.wait_for_records(seen, remaining)
        before, total = total, _read_all(ctx, reads, limit)
        if total <= before:
            break  # the wait timed out, or the broker is shutting down
    return ctx.response(
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        session_id=NO_SESSION,
        responses=_by_topic(ctx, reads),
    )


def _read_all(ctx: RequestContext, reads: list[_PartitionRead], limit: int) -> int:
    """Read every partition again; return the bytes of records the response holds."""
    total = 0
    broker = ctx.broker
    for read in reads:
        read.error, read.records = ErrorCode.none, b""
        try:
            result = broker.fetch_raw(
                read.topic, read.partition, read.offset, max(0, min(read.max_bytes, limit - total))
            )
        except MiniMQError as exc:
            read.error = error_code_for(exc)
            _fill_watermarks(broker, read)
            continue
        read.high_watermark = result.high_watermark
        read.log_start_offset = result.log_start_offset
        records = b"".join(result.batches)
        # Only the first batch of the response may pass the limits (KIP-74).
        if records and (total == 0 or total + len(records) <= limit):
            read.records = records
            total += len(records)
    return total


def _fill_watermarks(broker: Any, read: _PartitionRead) -> None:
    """High watermark and log start of a partition that refused a read, where it exists."""
    try:
        read.high_watermark = broker.latest_offset(read.topic, read.partition)
        read.log_start_offset = broker.earliest_offset(read.topic, read.partition)
    except MiniMQError:
        read.high_watermark = read.log_start_offset = -1


def _by_topic(ctx: RequestContext, reads: list[_PartitionRead]) -> list[Any]:
    topics: dict[str, list[Any]] = {}
    for read in reads:
        topics.setdefault(read.topic, []).append(
            ctx.make(
                "PartitionData",
                partition_index=read.partition,
                error_code=read.error,
                high_watermark=read.high_watermark,
                last_stable_offset=read.high_watermark,
                log_start_offset=read.log_start_offset,
                aborted_transactions=None,
                preferred_read_replica=-1,
                records=read.records,
            )
        )
    return [
        ctx.make("FetchableTopicResponse", topic=name, partitions=partitions)
        for name, partitions in topics.items()
    ]


HANDLERS: tuple[ApiHandler, ...] = (fetch,)
