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
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from minimq.core import Broker
from minimq.errors import MiniMQError
from minimq.kafka.codec import EncodedBody
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
    # The stored batches as the log read them (views, not copied), and their bytes.
    records: list[bytes | memoryview] = field(default_factory=list)
    records_size: int = 0
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
    total = await _read_all(ctx, reads, limit)
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
        before, total = total, await _read_all(ctx, reads, limit)
        if total <= before:
            break  # the wait timed out, or the broker is shutting down
    return encode_fetch_response(ctx.api_version, reads)


async def _read_all(ctx: RequestContext, reads: list[_PartitionRead], limit: int) -> int:
    """Read every partition again; return the bytes of records the response holds."""
    total = 0
    broker = ctx.broker
    for read in reads:
        read.error, read.records, read.records_size = ErrorCode.none, [], 0
        try:
            result = await broker.fetch_raw(
                read.topic, read.partition, read.offset, max(0, min(read.max_bytes, limit - total))
            )
        except MiniMQError as exc:
            read.error = error_code_for(exc)
            await _fill_watermarks(broker, read)
            continue
        read.high_watermark = result.high_watermark
        read.log_start_offset = result.log_start_offset
        size = sum(map(len, result.batches))
        # Only the first batch of the response may pass the limits (KIP-74).
        if size and (total == 0 or total + size <= limit):
            read.records, read.records_size = result.batches, size
            total += size
    return total


async def _fill_watermarks(broker: Broker, read: _PartitionRead) -> None:
    """High watermark and log start of a partition that refused a read, where it exists."""
    try:
        read.high_watermark = await broker.latest_offset(read.topic, read.partition)
        read.log_start_offset = await broker.earliest_offset(read.topic, read.partition)
    except MiniMQError:
        read.high_watermark = read.log_start_offset = -1


_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_PARTITION_HEAD = struct.Struct(">ihqq")  # index, error_code, high_watermark, last_stable
_INT64 = struct.Struct(">q")
_NULL = -1


def encode_fetch_response(version: int, reads: list[_PartitionRead]) -> EncodedBody:
    """The FetchResponse body of ``version`` (4-11), its record batches left as they were read.

    Byte for byte what kio's writer makes of the same response (a test
    compares them for every version), without copying the batches into the
    writer's buffer. Fields by version: ``error_code`` and ``session_id``
    from 7, ``log_start_offset`` from 5, ``preferred_read_replica`` from 11;
    ``aborted_transactions`` is always null (no transactions) and the last
    stable offset is the high watermark.
    """
    topics: dict[str, list[_PartitionRead]] = {}
    for read in reads:
        topics.setdefault(read.topic, []).append(read)
    head = bytearray(_INT32.pack(0))  # throttle_time_ms
    if version >= 7:
        head += _INT16.pack(ErrorCode.none.value) + _INT32.pack(NO_SESSION)
    head += _INT32.pack(len(topics))
    pieces: list[bytes | memoryview] = []
    for name, partitions in topics.items():
        encoded = name.encode()
        head += _INT16.pack(len(encoded)) + encoded + _INT32.pack(len(partitions))
        for read in partitions:
            head += _PARTITION_HEAD.pack(
                read.partition, read.error.value, read.high_watermark, read.high_watermark
            )
            if version >= 5:
                head += _INT64.pack(read.log_start_offset)
            head += _INT32.pack(_NULL)  # aborted_transactions
            if version >= 11:
                head += _INT32.pack(_NULL)  # preferred_read_replica
            head += _INT32.pack(read.records_size)
            if read.records:
                pieces.append(bytes(head))
                pieces.extend(read.records)
                head = bytearray()
    if head:
        pieces.append(bytes(head))
    return EncodedBody(pieces, sum(map(len, pieces)))


HANDLERS: tuple[ApiHandler, ...] = (fetch,)
