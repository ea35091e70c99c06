"""Every topic of one namespace: metadata in KV (``topics``), one stream per partition.

Creating a topic: the metadata write at revision 0 decides (``TopicAlreadyExists`` for every
other gateway), then the partition streams are created (replicas as configured, file storage,
``allow_direct``, ``allow_atomic``, retention as ``max_age``/``max_bytes`` with discard-old, and
a headers-only RePublish to the notification subject).  If a stream cannot be created the topic
is removed again.  Deleting: the metadata key goes first (the topic is gone for every gateway
from that moment), then the streams, then every gateway is told (``notifications``).

Lookups (``topic_config``, the stream of a partition) come from this gateway's copy of the
topics bucket (``topic_cache``), never a read of its leader per call; admin operations (create,
delete, retention, listing) read and write the leader, revision-checked, and tell the copy.

Retention belongs to the engine: JetStream expires by ``max_age`` and ``max_bytes`` itself, so
:meth:`JetStreamLogStore.apply_retention` removes nothing and returns 0.  ``retention_bytes`` is
per partition, as in Kafka, and counted as JetStream counts (messages with their headers).

Engine knobs of the disk engine (``segment_bytes``, ``segment_ms``, an ``fsync`` other than
``always``) cannot be honoured here and are refused with ``InvalidConfig``: JetStream has its own
block files, and every node runs ``sync_interval: always``.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import replace
from typing import Any, Final

from minimq.core.topic_config import DEFAULT_SEGMENT_BYTES, UNBOUNDED_MS, TopicConfig
from minimq.errors import (
    InvalidConfig,
    InvalidTopicName,
    PartitionNotFound,
    StorageError,
    TopicNotFound,
)
from minimq.jetstream.buckets import RevisionConflict
from minimq.jetstream.connection import (
    ERR_STREAM_NOT_FOUND,
    ApiError,
    JetStreamConnection,
    retry_failover,
)
from minimq.jetstream.names import Names, escape
from minimq.jetstream.notifications import Notifications
from minimq.jetstream.partition_log import (
    JetStreamPartitionLog,
    Location,
    PartitionContext,
    StreamStates,
)
from minimq.jetstream.topic_cache import TopicCache
from minimq.jetstream.topics import TopicCatalog, with_retention

# Each partition is a replicated stream with its own Raft group: bounded well below the disk
# engine's limit on purpose.
MAX_PARTITIONS: Final = 1024
DUPLICATE_WINDOW_NS: Final = 120 * 1_000_000_000
# Escaped topic names are KV keys and subject tokens; NATS limits a protocol line to 4 KiB.
MAX_ESCAPED_TOPIC: Final = 1024


def _check_config(config: TopicConfig) -> TopicConfig:
    def positive_or_none(value: object, what: str) -> None:
        if value is not None and (type(value) is not int or value <= 0):
            raise InvalidConfig(f"{what} must be a positive integer or unset, not {value!r}")

    if type(config.partitions) is not int or not 1 <= config.partitions <= MAX_PARTITIONS:
        raise InvalidConfig(
            f"partitions must be 1-{MAX_PARTITIONS} on the JetStream backend, "
            f"not {config.partitions!r}"
        )
    positive_or_none(config.retention_ms, "retention_ms")
    positive_or_none(config.retention_bytes, "retention_bytes")
    if config.segment_bytes != DEFAULT_SEGMENT_BYTES or config.segment_ms is not None:
        raise InvalidConfig(
            "segment_bytes and segment_ms are disk-engine settings, not JetStream's"
        )
    if config.fsync is not None and config.fsync.mode != "always":
        raise InvalidConfig("the JetStream backend always syncs (sync_interval: always)")
    for name in ("message_timestamp_before_max_ms", "message_timestamp_after_max_ms"):
        bound = getattr(config, name)
        if bound is not None and (type(bound) is not int or not 0 <= bound <= UNBOUNDED_MS):
            raise InvalidConfig(f"{name} must be 0-{UNBOUNDED_MS} or unset, not {bound!r}")
    return config


class JetStreamLogStore:
    """The LogStore of the JetStream backend; many gateways may share one namespace."""

    def __init__(
        self,
        *,
        connection: JetStreamConnection,
        names: Names,
        catalog: TopicCatalog,
        cache: TopicCache,
        context: PartitionContext,
        states: StreamStates,
        notifications: Notifications,
        replicas: int,
    ) -> None:
        self._connection = connection
        self._names = names
        self._catalog = catalog
        self._cache = cache
        self._context = context
        self._states = states
        self._notifications = notifications
        self._replicas = replicas
        context.locate = self._locate
        context.forget_topic = cache.drop

    # -- names and configs -------------------------------------------------------------------

    def validate_topic_name(self, name: str) -> None:
        if len(escape(name)) > MAX_ESCAPED_TOPIC:
            raise InvalidTopicName(f"topic name too long for the JetStream backend: {name!r}")

    async def topic_names(self) -> list[str]:
        return await self._catalog.names()

    async def topic_config(self, topic: str) -> TopicConfig:
        """From this gateway's cache (``topic_cache``): no round trip to the bucket's leader."""
        return await self._cache.get(topic)

    def forget(self, topic: str) -> None:
        """Another gateway deleted ``topic`` (its notification)."""
        self._cache.deleted(topic)

    async def _locate(self, topic: str, partition: int) -> Location:
        config = await self._cache.get(topic)
        topic_id = config.topic_id
        assert topic_id is not None
        if not 0 <= partition < config.partitions:
            raise PartitionNotFound(f"topic {topic!r} has no partition {partition}")
        return Location(
            self._names.partition_stream(topic_id, partition),
            self._names.partition_subject(topic_id, partition),
            self._names.commit_subject(topic_id, partition),
            topic_id,
        )

    # -- streams -----------------------------------------------------------------------------

    def _stream_config(self, topic: str, config: TopicConfig, partition: int) -> dict[str, Any]:
        assert config.topic_id is not None
        subject = self._names.partition_subject(config.topic_id, partition)
        commit_subject = self._names.commit_subject(config.topic_id, partition)
        max_age_ns = (config.retention_ms or 0) * 1_000_000
        # JetStream refuses a duplicate window longer than max_age: a very short retention
        # shortens the window in which a retried append is recognised as a repeat.
        window_ns = min(DUPLICATE_WINDOW_NS, max_age_ns) if max_age_ns else DUPLICATE_WINDOW_NS
        return {
            "name": self._names.partition_stream(config.topic_id, partition),
            "description": f"MiniMQ topic {topic} partition {partition}",
            "metadata": {"minimq_topic": topic, "minimq_partition": str(partition)},
            "subjects": [subject, commit_subject],
            "num_replicas": self._replicas,
            "storage": "file",
            "retention": "limits",
            "discard": "old",
            "max_age": max_age_ns,
            "max_bytes": config.retention_bytes or -1,
            "max_msgs": -1,
            "duplicate_window": window_ns,
            "allow_direct": True,
            "allow_atomic": True,
            "republish": {
                "src": commit_subject,
                "dest": self._names.notification_subject(topic, partition),
                "headers_only": True,
            },
        }

    async def _create_streams(self, topic: str, config: TopicConfig) -> None:
        for partition in range(config.partitions):
            stream_config = self._stream_config(topic, config, partition)
            await retry_failover(
                functools.partial(
                    self._connection.api, f"STREAM.CREATE.{stream_config['name']}", stream_config
                ),
                f"creating the streams of {topic}",
            )

    async def _delete_streams(self, config: TopicConfig) -> None:
        assert config.topic_id is not None
        for partition in range(config.partitions):
            stream = self._names.partition_stream(config.topic_id, partition)

            async def delete(name: str = stream) -> None:
                try:
                    await self._connection.api(f"STREAM.DELETE.{name}")
                except ApiError as exc:
                    if exc.err_code != ERR_STREAM_NOT_FOUND:
                        raise

            await retry_failover(delete, f"deleting the streams of topic id {config.topic_id}")
            self._states.forget(stream)

    # -- topic lifecycle -----------------------------------------------------------------------

    async def create_topic(self, topic: str, config: TopicConfig) -> None:
        self.validate_topic_name(topic)
        config = replace(_check_config(config), topic_id=uuid.uuid4().hex)
        revision = await self._catalog.create(topic, config)
        try:
            await self._create_streams(topic, config)
            self._cache.learned(topic, config, revision)
        except BaseException as exc:
            try:
                await self._catalog.delete(topic)
                await self._delete_streams(config)
            except Exception:
                pass  # best effort: the error below is what the caller must see
            if isinstance(exc, ApiError):
                raise StorageError(f"JetStream refused the streams of {topic}: {exc}") from exc
            raise

    async def delete_topic(self, topic: str) -> None:
        config, _ = await self._catalog.get(topic)
        await self._catalog.delete(topic)
        self._cache.deleted(topic, config.topic_id)
        await self._delete_streams(config)
        await self._notifications.announce_deleted(topic, config.partitions)

    async def update_retention(
        self, topic: str, retention_ms: int | None, retention_bytes: int | None
    ) -> TopicConfig:
        while True:
            current, revision = await self._catalog.get(topic)
            updated = _check_config(with_retention(current, retention_ms, retention_bytes))
            try:
                revision = await self._catalog.update(topic, updated, revision)
                break
            except RevisionConflict:
                continue
        self._cache.learned(topic, updated, revision)
        for partition in range(updated.partitions):
            stream_config = self._stream_config(topic, updated, partition)
            try:
                await retry_failover(
                    functools.partial(
                        self._connection.api,
                        f"STREAM.UPDATE.{stream_config['name']}",
                        stream_config,
                    ),
                    f"updating the retention of {topic}",
                )
            except ApiError as exc:
                if exc.err_code == ERR_STREAM_NOT_FOUND:
                    raise TopicNotFound(f"topic {topic!r} does not exist (any more)") from None
                raise StorageError(f"JetStream refused the retention of {topic}: {exc}") from exc
        return updated

    def partition(self, topic: str, partition: int) -> JetStreamPartitionLog:
        return JetStreamPartitionLog(self._context, topic, partition)

    async def apply_retention(self) -> int:
        """JetStream expires records itself (max_age, max_bytes): nothing to do here."""
        return 0

    async def close(self) -> None:
        """Stops the topics watch; the storage owns the connection."""
        await self._cache.close()
