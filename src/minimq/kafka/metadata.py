"""Metadata (key 3): this one broker, node 0, leads every partition; topics auto-created.

MiniMQ is one node: it is the only broker, the controller, and the leader
(leader epoch 0) and only replica of every partition. A requested topic that
does not exist is created when ``--kafka-auto-create-topics`` is on and the
request allows it (v4+ ``allow_auto_topic_creation``; before v4 the broker
setting alone decides, as in Kafka). kcat has no CreateTopics and relies on
this. Created topics are answered at once, complete: there is no leader
election to wait for, so no LEADER_NOT_AVAILABLE.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from minimq.core.topic_config import validate_topic_name
from minimq.errors import MiniMQError, TopicNotFound
from minimq.kafka.context import RequestContext
from minimq.kafka.errors import error_code_for
from minimq.kafka.registry import ApiHandler, api

CLUSTER_ID = "minimq"
LEADER_EPOCH = 0


@api(3, 0, 8)
async def metadata(request: Any, ctx: RequestContext) -> Any:
    requested = request.topics
    if requested is None or (ctx.api_version == 0 and not requested):
        names = await ctx.broker.topic_names()  # null (v0: empty) means every topic
        may_create = False
    else:
        names = [topic.name for topic in requested]
        may_create = getattr(request, "allow_auto_topic_creation", True)
    host, port = ctx.advertised
    node = ctx.settings.node_id
    return ctx.response(
        throttle_time=datetime.timedelta(0),
        brokers=[ctx.make("MetadataResponseBroker", node_id=node, host=host, port=port)],
        cluster_id=CLUSTER_ID,
        controller_id=node,
        topics=[await _topic(ctx, name, may_create) for name in dict.fromkeys(names)],
    )


async def _topic(ctx: RequestContext, name: str, may_create: bool) -> Any:
    try:
        validate_topic_name(name)
        if may_create:
            await ensure_topic(ctx, name)
        partitions = (await ctx.broker.describe_topic(name)).config.partitions
    except MiniMQError as exc:
        return ctx.make(
            "MetadataResponseTopic", error_code=error_code_for(exc), name=name, partitions=[]
        )
    node = ctx.settings.node_id
    return ctx.make(
        "MetadataResponseTopic",
        error_code=ErrorCode.none,
        name=name,
        is_internal=False,
        partitions=[
            ctx.make(
                "MetadataResponsePartition",
                error_code=ErrorCode.none,
                partition_index=index,
                leader_id=node,
                leader_epoch=LEADER_EPOCH,
                replica_nodes=(node,),
                isr_nodes=(node,),
                offline_replicas=(),
            )
            for index in range(partitions)
        ],
    )


async def ensure_topic(ctx: RequestContext, name: str) -> None:
    """Create ``name`` with the broker's default partitions if it is missing and may be.

    Raises ``TopicNotFound`` when auto-creation is off, ``InvalidTopicName``
    for a name no topic can have.
    """
    broker = ctx.broker
    try:
        await broker.describe_topic(name)
        return
    except TopicNotFound:
        pass
    validate_topic_name(name)
    if not ctx.settings.auto_create_topics:
        raise TopicNotFound(f"topic {name!r} does not exist")
    await broker.ensure_topic(name)


HANDLERS: tuple[ApiHandler, ...] = (metadata,)
