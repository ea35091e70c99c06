"""DescribeConfigs (key 32), v1-3: topic configs, and a minimal broker resource.

v1 is also where Kafka 4's range (and kio's schemas) start; clients pick the
top of their range (aiokafka 2, librdkafka 1, kafka-python 3).

Topics report retention, ``cleanup.policy=delete``, segment and timestamp
settings (:mod:`minimq.kafka.topic_configs`); Kafka Connect and UIs read
them. The broker resource (name ``"0"``, or ``""`` for the cluster default)
reports the few settings a client may look at. Nothing is read-only in
principle, but nothing can be altered either: AlterConfigs is not served.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

from kio.schema.errors import ErrorCode

from minimq.errors import InvalidRequest, MiniMQError
from minimq.kafka.context import RequestContext
from minimq.kafka.errors import error_code_for
from minimq.kafka.registry import ApiHandler, api
from minimq.kafka.topic_configs import TYPE_INT, TYPE_STRING, ConfigEntry, describe

TOPIC: Final = 2
BROKER: Final = 4
# DescribeConfigs config_source values.
DYNAMIC_TOPIC_CONFIG: Final = 1
STATIC_BROKER_CONFIG: Final = 4
DEFAULT_CONFIG: Final = 5


@api(32, 1, 3)
async def describe_configs(request: Any, ctx: RequestContext) -> Any:
    return ctx.response(
        throttle_time=datetime.timedelta(0),
        results=[await _resource(ctx, resource) for resource in request.resources],
    )


async def _resource(ctx: RequestContext, resource: Any) -> Any:
    code, message, entries = ErrorCode.none, None, list[ConfigEntry]()
    try:
        entries = await _entries(ctx, resource.resource_type, resource.resource_name)
    except MiniMQError as exc:
        code, message = error_code_for(exc), exc.message
    wanted = resource.configuration_keys
    if wanted is not None:
        entries = [entry for entry in entries if entry.name in wanted]
    return ctx.make(
        "DescribeConfigsResult",
        error_code=code,
        error_message=message,
        resource_type=resource.resource_type,
        resource_name=resource.resource_name,
        configs=[_config(ctx, resource.resource_type, entry) for entry in entries],
    )


async def _entries(ctx: RequestContext, resource_type: int, name: str) -> list[ConfigEntry]:
    broker = ctx.broker
    if resource_type == TOPIC:
        config = (await broker.describe_topic(name)).config
        return describe(config, broker.settings.timestamp_bounds)
    if resource_type == BROKER:
        if name not in ("", str(ctx.settings.node_id)):
            raise InvalidRequest(f"no broker {name!r}: this is broker {ctx.settings.node_id}")
        settings = ctx.settings
        return [
            ConfigEntry("broker.id", str(settings.node_id), False, TYPE_INT),
            ConfigEntry("num.partitions", str(broker.settings.default_partitions), False, TYPE_INT),
            ConfigEntry(
                "auto.create.topics.enable",
                str(settings.auto_create_topics).lower(),
                False,
                TYPE_STRING,
            ),
            ConfigEntry(
                "socket.request.max.bytes", str(settings.max_request_bytes), False, TYPE_INT
            ),
            ConfigEntry("default.replication.factor", "1", True, TYPE_INT),
        ]
    raise InvalidRequest(f"resource type {resource_type} is not supported (2 topic, 4 broker)")


def _config(ctx: RequestContext, resource_type: int, entry: ConfigEntry) -> Any:
    if entry.is_default:
        source = DEFAULT_CONFIG
    else:
        source = DYNAMIC_TOPIC_CONFIG if resource_type == TOPIC else STATIC_BROKER_CONFIG
    return ctx.make(
        "DescribeConfigsResourceResult",
        name=entry.name,
        value=entry.value,
        read_only=resource_type == BROKER,
        config_source=source,
        is_sensitive=False,
        synonyms=[],
        config_type=entry.config_type,
        documentation=None,
    )


HANDLERS: tuple[ApiHandler, ...] = (describe_configs,)
