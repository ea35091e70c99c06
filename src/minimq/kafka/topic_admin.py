"""CreateTopics (key 19, v2-4) and DeleteTopics (key 20, v1-3): one result per topic.

The ranges start where Kafka 4's do (and kio's schemas): every target client
picks a version from the top of its range, so nothing needs CreateTopics
v0-1 or DeleteTopics v0.

CreateTopics takes ``num_partitions`` (-1: the broker's default), a
replication factor of 1 or -1 (one node: more is INVALID_REPLICATION_FACTOR),
no manual replica assignment, and the configs of
:mod:`minimq.kafka.topic_configs`. ``validate_only`` checks all of that, the
name and that the topic does not exist, and creates nothing.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from minimq.core.topic_config import validate_topic_name
from minimq.errors import MiniMQError, TopicAlreadyExists
from minimq.kafka.context import RequestContext
from minimq.kafka.errors import KafkaError, error_code_for
from minimq.kafka.registry import ApiHandler, api
from minimq.kafka.topic_configs import as_dict, topic_config

BROKER_DEFAULT = -1


@api(19, 2, 4)
async def create_topics(request: Any, ctx: RequestContext) -> Any:
    validate_only = getattr(request, "validate_only", False)
    results = []
    for topic in request.topics:
        code, message = ErrorCode.none, None
        try:
            await _create(ctx, topic, validate_only)
        except (MiniMQError, KafkaError) as exc:
            code, message = error_code_for(exc), exc.message
        results.append(
            ctx.make(
                "CreatableTopicResult", name=topic.name, error_code=code, error_message=message
            )
        )
    return ctx.response(throttle_time=datetime.timedelta(0), topics=results)


async def _create(ctx: RequestContext, topic: Any, validate_only: bool) -> None:
    broker = ctx.broker
    validate_topic_name(topic.name)
    if topic.replication_factor not in (1, BROKER_DEFAULT):
        raise KafkaError(
            ErrorCode.invalid_replication_factor,
            f"replication factor {topic.replication_factor}: this broker is one node",
        )
    if topic.assignments:
        raise KafkaError(
            ErrorCode.invalid_replica_assignment, "manual replica assignment is not supported"
        )
    partitions = topic.num_partitions
    if partitions == BROKER_DEFAULT:
        partitions = broker.settings.default_partitions
    if partitions <= 0:
        raise KafkaError(ErrorCode.invalid_partitions, f"{partitions} partitions")
    config = topic_config(partitions, as_dict(topic.configs))
    if validate_only:
        if topic.name in await broker.topic_names():
            raise TopicAlreadyExists(f"topic {topic.name!r} already exists")
        return
    await broker.create_topic(topic.name, config)


@api(20, 1, 3)
async def delete_topics(request: Any, ctx: RequestContext) -> Any:
    results = []
    for name in request.topic_names:
        code = ErrorCode.none
        try:
            await ctx.broker.delete_topic(name)
        except MiniMQError as exc:
            code = error_code_for(exc)
        results.append(ctx.make("DeletableTopicResult", name=name, error_code=code))
    return ctx.response(throttle_time=datetime.timedelta(0), responses=results)


HANDLERS: tuple[ApiHandler, ...] = (create_topics, delete_topics)
