"""ListOffsets (key 2), versions 1-5: latest (-1), earliest (-2), or by timestamp.

A timestamp asks for the first record stamped at or after it; none gives
offset -1 and timestamp -1, as Kafka answers. The isolation level is moot
without transactions (the last stable offset is the high watermark).
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from minimq.errors import MiniMQError
from minimq.kafka.context import RequestContext
from minimq.kafka.errors import error_code_for
from minimq.kafka.registry import ApiHandler, api

LATEST = -1
EARLIEST = -2
LEADER_EPOCH = 0


@api(2, 1, 5)
async def list_offsets(request: Any, ctx: RequestContext) -> Any:
    return ctx.response(
        throttle_time=datetime.timedelta(0),
        topics=[
            ctx.make(
                "ListOffsetsTopicResponse",
                name=topic.name,
                partitions=[await _partition(ctx, topic.name, p) for p in topic.partitions],
            )
            for topic in request.topics
        ],
    )


async def _partition(ctx: RequestContext, topic: str, request: Any) -> Any:
    broker = ctx.broker
    index = request.partition_index
    timestamp, offset = -1, -1
    try:
        if request.timestamp == LATEST:
            offset = await broker.latest_offset(topic, index)
        elif request.timestamp == EARLIEST:
            offset = await broker.earliest_offset(topic, index)
        else:
            found = await broker.offset_for_timestamp(topic, index, request.timestamp)
            if found is not None:
                timestamp, offset = found.timestamp, found.offset
    except MiniMQError as exc:
        return ctx.make(
            "ListOffsetsPartitionResponse", partition_index=index, error_code=error_code_for(exc)
        )
    return ctx.make(
        "ListOffsetsPartitionResponse",
        partition_index=index,
        error_code=ErrorCode.none,
        timestamp=timestamp,
        offset=offset,
        leader_epoch=LEADER_EPOCH,
    )


HANDLERS: tuple[ApiHandler, ...] = (list_offsets,)
