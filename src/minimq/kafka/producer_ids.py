"""InitProducerId (key 22), v0-1: a new producer id for an idempotent producer.

Only the null transactional id is served: MiniMQ has no transactions, so a
transactional producer is told TRANSACTIONAL_ID_AUTHORIZATION_FAILED, the
error Kafka gives a principal that may not use a transactional id, which
every client reports as fatal rather than retrying (INVALID_TXN_STATE and
COORDINATOR_NOT_AVAILABLE would be retried for ever). Ids come from the
core's persisted allocator, so they are not reused across restarts.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from minimq.errors import MiniMQError
from minimq.kafka.context import RequestContext
from minimq.kafka.errors import error_code_for
from minimq.kafka.registry import ApiHandler, api


@api(22, 0, 1)
async def init_producer_id(request: Any, ctx: RequestContext) -> Any:
    if request.transactional_id is not None:
        return _refused(ctx, ErrorCode.transactional_id_authorization_failed)
    try:
        producer_id, epoch = await ctx.broker.init_producer_id()
    except MiniMQError as exc:
        return _refused(ctx, error_code_for(exc))
    return ctx.response(
        throttle_time=datetime.timedelta(0),
        error_code=ErrorCode.none,
        producer_id=producer_id,
        producer_epoch=epoch,
    )


def _refused(ctx: RequestContext, code: ErrorCode) -> Any:
    return ctx.response(
        throttle_time=datetime.timedelta(0), error_code=code, producer_id=-1, producer_epoch=-1
    )


HANDLERS: tuple[ApiHandler, ...] = (init_producer_id,)
