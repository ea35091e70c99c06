"""The JetStream backend opened: logs, offsets, producer ids and wake-ups over one connection.

:func:`open_jetstream_storage` is the entry point the composition root calls for
``--backend nats://...``.  It connects (``connection``), makes sure the namespace's three KV
buckets exist, subscribes to the namespace's notifications and returns a
:class:`JetStreamStorage`.  Any number of broker processes may open the same namespace at once:
they share nothing but the NATS cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

from minimq.core.storage_seam import AppendListener
from minimq.errors import InvalidConfig
from minimq.jetstream.buckets import LeaderBucket
from minimq.jetstream.connection import JetStreamConnection, connect
from minimq.jetstream.direct_get import DirectReader
from minimq.jetstream.group_leases import JetStreamGroupLeases, group_owners_bucket
from minimq.jetstream.log_store import JetStreamLogStore
from minimq.jetstream.names import Names
from minimq.jetstream.notifications import Notifications
from minimq.jetstream.offsets import JetStreamOffsetStore
from minimq.jetstream.partition_log import Location, PartitionContext, StreamStates
from minimq.jetstream.producer_ids import KvProducerIds
from minimq.jetstream.topic_cache import TopicCache
from minimq.jetstream.topics import TopicCatalog

MAX_REPLICAS = 5


class JetStreamStorage:
    """The Storage of the JetStream backend (one per broker process)."""

    def __init__(
        self,
        *,
        connection: JetStreamConnection,
        reader: DirectReader,
        logs: JetStreamLogStore,
        offsets: JetStreamOffsetStore,
        producer_ids: KvProducerIds,
        notifications: Notifications,
        group_leases: JetStreamGroupLeases,
    ) -> None:
        self._connection = connection
        self._reader = reader
        self._logs = logs
        self._offsets = offsets
        self._producer_ids = producer_ids
        self._notifications = notifications
        self._group_leases = group_leases

    @property
    def logs(self) -> JetStreamLogStore:
        return self._logs

    @property
    def offsets(self) -> JetStreamOffsetStore:
        return self._offsets

    @property
    def producer_ids(self) -> KvProducerIds:
        return self._producer_ids

    @property
    def group_leases(self) -> JetStreamGroupLeases:
        return self._group_leases

    def add_append_listener(self, listener: AppendListener) -> None:
        self._notifications.add_listener(listener)

    async def close(self) -> None:
        await self._logs.close()
        await self._notifications.close()
        await self._reader.close()
        await self._connection.close()


async def _not_wired(topic: str, partition: int) -> Location:
    raise RuntimeError("partition context used before the log store was built")


async def open_jetstream_storage(
    servers: Sequence[str],
    *,
    replicas: int = 3,
    namespace: str = "minimq",
    connect_timeout_s: float = 60.0,
) -> JetStreamStorage:
    """Connect to the NATS cluster at ``servers`` and open ``namespace`` on it."""
    names = Names(namespace)  # InvalidConfig for a bad namespace, before connecting
    if type(replicas) is not int or not 1 <= replicas <= MAX_REPLICAS:
        raise InvalidConfig(
            f"replicas must be 1-{MAX_REPLICAS} (JetStream's limit), not {replicas!r}"
        )
    connection = await connect(servers, connect_timeout_s, name=f"minimq-{namespace}")
    try:
        reader = DirectReader(connection)
        await reader.start()
        topics_bucket = LeaderBucket(connection, reader, names.topics_bucket)
        offsets_bucket = LeaderBucket(connection, reader, names.offsets_bucket)
        ids_bucket = LeaderBucket(connection, reader, names.producer_ids_bucket)
        leases_bucket = LeaderBucket(connection, reader, group_owners_bucket(namespace))
        for bucket in (topics_bucket, offsets_bucket, ids_bucket, leases_bucket):
            await bucket.ensure(replicas)
        catalog = TopicCatalog(topics_bucket)
        cache = TopicCache(catalog, topics_bucket)
        states = StreamStates()
        notifications = Notifications(connection, names, states.saw_end)
        context = PartitionContext(
            connection=connection,
            reader=reader,
            states=states,
            locate=_not_wired,
            forget_topic=lambda topic, topic_id: None,
            stored=notifications.notify_local,
        )
        logs = JetStreamLogStore(
            connection=connection,
            names=names,
            catalog=catalog,
            cache=cache,
            context=context,
            states=states,
            notifications=notifications,
            replicas=replicas,
        )
        notifications.add_deletion_listener(logs.forget)
        await notifications.start()
        cache.start_watch(connection)
        return JetStreamStorage(
            connection=connection,
            reader=reader,
            logs=logs,
            offsets=JetStreamOffsetStore(offsets_bucket, catalog),
            producer_ids=KvProducerIds(ids_bucket),
            notifications=notifications,
            group_leases=JetStreamGroupLeases(leases_bucket),
        )
    except BaseException:
        await connection.close()
        raise
