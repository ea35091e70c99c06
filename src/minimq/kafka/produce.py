"""Produce (key 0): store each partition's RecordBatches verbatim, per-partition outcomes.

Versions 0-8 are advertised and 3-8 served. librdkafka up to 2.11.0 turns
on gzip, snappy and lz4 only when the Produce range includes v0, so the
range starts at 0; v0-2 (magic 0/1 message sets) are answered
UNSUPPORTED_VERSION on every partition, as Kafka 4 does (KAFKA-18659).
kio has no schemas below v3 (nor has Kafka 4), so :func:`refuse_legacy`
reads and writes those few fields itself.

acks 0 gets no response at all; acks 1 and -1 are answered once every
partition's batch is stored *and* the fsync policy is met: on one node the
two are the same promise. Each partition succeeds or fails on its own
(``produce_raw`` validates, deduplicates retried idempotent batches and
appends); a topic missing is created when auto-creation is on.
"""

from __future__ import annotations

import asyncio
import datetime
import struct
from typing import Any

from kio.schema.errors import ErrorCode
from kio.serial.readers import (
    read_int16,
    read_int32,
    read_legacy_array_length,
    read_legacy_string,
    read_nullable_legacy_bytes,
    read_nullable_legacy_string,
)

from minimq.errors import MiniMQError
from minimq.kafka.codec import HEAD_BYTES
from minimq.kafka.context import RequestContext
from minimq.kafka.errors import KafkaError, error_code_for
from minimq.kafka.metadata import ensure_topic
from minimq.kafka.registry import ApiHandler, api

MIN_SERVED_VERSION = 3
VALID_ACKS = (-1, 0, 1)


@api(0, 0, 8)
async def produce(request: Any, ctx: RequestContext) -> Any:
    refusal: KafkaError | None = None
    if request.acks not in VALID_ACKS:
        refusal = KafkaError(ErrorCode.invalid_required_acks)
    elif request.transactional_id is not None:
        refusal = KafkaError(ErrorCode.transactional_id_authorization_failed)
    # No lock across the requests of a connection: the handlers of pipelined
    # requests start in request order, and ``produce_raw`` takes its place in
    # the partition's append order before its first await (``ensure_topic``
    # does not suspend for a topic that exists), so they append in the order
    # sent and share fsyncs.
    topics = await asyncio.gather(*(_topic(ctx, topic, refusal) for topic in request.topic_data))
    if request.acks == 0:
        return None
    return ctx.response(responses=topics, throttle_time=datetime.timedelta(0))


async def _topic(ctx: RequestContext, topic: Any, refusal: KafkaError | None) -> Any:
    name = topic.name
    if refusal is None:
        try:
            await ensure_topic(ctx, name)
        except MiniMQError as exc:
            refusal = KafkaError(error_code_for(exc), exc.message)
    partitions = await asyncio.gather(
        *(_partition(ctx, name, data, refusal) for data in topic.partition_data)
    )
    return ctx.make("TopicProduceResponse", name=name, partition_responses=partitions)


async def _partition(ctx: RequestContext, topic: str, data: Any, refusal: KafkaError | None) -> Any:
    try:
        if refusal is not None:
            raise refusal
        if data.records is None:
            raise KafkaError(ErrorCode.invalid_record, "a partition without records")
        result = await ctx.broker.produce_raw(topic, data.index, data.records)
    except (MiniMQError, KafkaError) as exc:
        return ctx.make(
            "PartitionProduceResponse",
            index=data.index,
            error_code=error_code_for(exc),
            base_offset=-1,
            log_start_offset=-1,
            record_errors=[],
            error_message=exc.message,
        )
    return ctx.make(
        "PartitionProduceResponse",
        index=data.index,
        error_code=ErrorCode.none,
        base_offset=result.base_offset,
        log_start_offset=result.log_start_offset,
        record_errors=[],
        error_message=None,
    )


def refuse_legacy(frame: bytes, version: int, correlation_id: int) -> bytes | None:
    """The UNSUPPORTED_VERSION answer to a Produce v0-2 ``frame`` (None for acks 0).

    Reads only what the answer repeats (acks, topic names, partition
    indexes); raises the reader's errors on a malformed frame.
    """
    _, used = read_nullable_legacy_string(frame, HEAD_BYTES)  # client_id
    offset = HEAD_BYTES + used
    acks, used = read_int16(frame, offset)
    offset += used + 4  # timeout
    topics, used = read_legacy_array_length(frame, offset)
    offset += used
    answer = [struct.pack(">ii", correlation_id, topics)]
    for _ in range(topics):
        name, used = read_legacy_string(frame, offset)
        offset += used
        encoded = name.encode()
        partitions, used = read_legacy_array_length(frame, offset)
        offset += used
        answer.append(struct.pack(">h", len(encoded)) + encoded + struct.pack(">i", partitions))
        for _ in range(partitions):
            index, used = read_int32(frame, offset)
            offset += used
            _, used = read_nullable_legacy_bytes(frame, offset)
            offset += used
            answer.append(struct.pack(">ihq", index, ErrorCode.unsupported_version.value, -1))
            if version >= 2:
                answer.append(struct.pack(">q", -1))  # log_append_time
    if version >= 1:
        answer.append(struct.pack(">i", 0))  # throttle_time_ms
    if acks == 0:
        return None
    body = b"".join(answer)
    return struct.pack(">i", len(body)) + body


HANDLERS: tuple[ApiHandler, ...] = (produce,)
