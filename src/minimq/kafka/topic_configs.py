"""Kafka topic config names over MiniMQ's :class:`TopicConfig`: one table, both ways.

CreateTopics reads them (:func:`topic_config`) and DescribeConfigs reports
them (:func:`describe`). A name not in :data:`SETTABLE` is refused with
INVALID_CONFIG, as Kafka refuses an unknown name; ``cleanup.policy`` accepts
``delete`` only (MiniMQ does not compact), and ``-1`` means "no bound" for
retention, as in Kafka.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final, NamedTuple

from minimq.core.timestamps import TimestampBounds
from minimq.core.topic_config import DEFAULT_SEGMENT_BYTES, TopicConfig
from minimq.errors import InvalidConfig

CLEANUP_POLICY: Final = "delete"
TIMESTAMP_TYPE: Final = "CreateTime"
# Kafka's default segment.ms (7 days), reported when a topic sets none.
KAFKA_SEGMENT_MS: Final = 604_800_000
UNBOUNDED: Final = -1

# DescribeConfigs config_type values (Kafka's ConfigEntry.ConfigType).
TYPE_STRING: Final = 2
TYPE_LONG: Final = 5
TYPE_INT: Final = 3


class ConfigEntry(NamedTuple):
    name: str
    value: str
    is_default: bool
    config_type: int


# Kafka name -> TopicConfig field of the numeric settings CreateTopics may set.
_NUMERIC: Final[dict[str, str]] = {
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "message.timestamp.before.max.ms": "message_timestamp_before_max_ms",
    "message.timestamp.after.max.ms": "message_timestamp_after_max_ms",
}
# Settings that may be -1 (no bound), stored as None.
_UNBOUNDABLE: Final = frozenset({"retention.ms", "retention.bytes", "segment.ms"})
SETTABLE: Final = frozenset({*_NUMERIC, "cleanup.policy", "message.timestamp.type"})


def topic_config(partitions: int, configs: dict[str, str | None]) -> TopicConfig:
    """The TopicConfig of a CreateTopics entry; ``InvalidConfig`` for what MiniMQ cannot do."""
    config = TopicConfig(partitions=partitions)
    for name, value in configs.items():
        if value is None:
            continue
        if name not in SETTABLE:
            raise InvalidConfig(f"unknown or unsupported topic config {name!r}")
        if name == "cleanup.policy":
            if value != CLEANUP_POLICY:
                raise InvalidConfig(f"cleanup.policy {value!r}: only 'delete' is supported")
            continue
        if name == "message.timestamp.type":
            if value != TIMESTAMP_TYPE:
                raise InvalidConfig(
                    f"message.timestamp.type {value!r}: only CreateTime is supported"
                )
            continue
        try:
            number = int(value)
        except ValueError:
            raise InvalidConfig(f"{name} must be an integer, not {value!r}") from None
        if number < 0 and not (number == UNBOUNDED and name in _UNBOUNDABLE):
            raise InvalidConfig(f"{name} must be 0 or more, not {value!r}")
        settings: dict[str, Any] = {_NUMERIC[name]: None if number < 0 else number}
        config = replace(config, **settings)
    return config


def describe(config: TopicConfig, defaults: TimestampBounds) -> list[ConfigEntry]:
    """Every topic config Kafka tools look for, with whether it is the default."""

    def optional(value: int | None, default: int) -> tuple[str, bool]:
        return (str(default), True) if value is None else (str(value), False)

    before = optional(config.message_timestamp_before_max_ms, defaults.before_max_ms)
    after = optional(config.message_timestamp_after_max_ms, defaults.after_max_ms)
    retention_ms = optional(config.retention_ms, UNBOUNDED)
    retention_bytes = optional(config.retention_bytes, UNBOUNDED)
    segment_ms = optional(config.segment_ms, KAFKA_SEGMENT_MS)
    return [
        ConfigEntry("cleanup.policy", CLEANUP_POLICY, True, TYPE_STRING),
        ConfigEntry("retention.ms", *retention_ms, TYPE_LONG),
        ConfigEntry("retention.bytes", *retention_bytes, TYPE_LONG),
        ConfigEntry(
            "segment.bytes",
            str(config.segment_bytes),
            config.segment_bytes == DEFAULT_SEGMENT_BYTES,
            TYPE_INT,
        ),
        ConfigEntry("segment.ms", *segment_ms, TYPE_LONG),
        ConfigEntry("message.timestamp.type", TIMESTAMP_TYPE, True, TYPE_STRING),
        ConfigEntry("message.timestamp.before.max.ms", *before, TYPE_LONG),
        ConfigEntry("message.timestamp.after.max.ms", *after, TYPE_LONG),
    ]


def as_dict(entries: Any) -> dict[str, str | None]:
    """CreateTopics ``configs`` entries as name -> value."""
    return {entry.name: entry.value for entry in entries}
