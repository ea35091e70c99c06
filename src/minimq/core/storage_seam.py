"""The narrow, async interface between the broker core and whatever stores the log.

``minimq.core`` depends only on these protocols and on the types of
:mod:`minimq.core.records` and :mod:`minimq.core.topic_config`; a backend
implements them and imports nothing else of the core.  Two real backends do:
the disk engine (``minimq.storage``, one process owns a data directory) and
the JetStream backend (``minimq.jetstream``, many stateless broker processes
over one NATS cluster); the tests add an in-memory fake.

Offsets follow Kafka: the *start offset* is the first offset still stored, the
*end offset* (high watermark) is the offset the next appended record gets.
Timestamps are milliseconds since the Unix epoch.

Why async.  A read, the bounds of a partition, a topic's config or a group's
commits may need a network round trip (JetStream); the disk engine answers
them from memory, its coroutines return without suspending, so they cost a
coroutine call and never an executor hop.

Wake-ups.  Long-polls, live streams and Kafka Fetch waits sleep on
per-partition signals.  A backend wakes them through the listeners of
:meth:`Storage.add_append_listener` once records are *stored* (readable),
also when another process sharing the backend appended them; the core does
not signal its own appends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from minimq.core.records import NewRecord, Record
from minimq.core.topic_config import TopicConfig

if TYPE_CHECKING:
    from minimq.recordbatch.frames import BatchHeader

# (topic, partition) whose records were stored, or whose topic was deleted; on the event loop.
AppendListener = Callable[[str, int], None]


class LogBounds(NamedTuple):
    """Where a partition's log stands."""

    start: int  # first offset still stored (log start offset)
    end: int  # offset the next record gets (high watermark); never goes down
    size_bytes: int  # approximate stored bytes of the partition


class PartitionLog(Protocol):
    """One partition's append-only log.

    Appends of one call are atomic (all records or none) and contiguous.
    Reads may run concurrently with appends and never see a partial append.
    A handle may outlive its topic: using it then raises ``TopicNotFound``.
    """

    async def bounds(self) -> LogBounds:
        """The current start and end offsets and size.

        As new as the backend's leader knows them, or at least as new as any
        this process was given before (monotonic per process).
        """
        ...

    async def append(self, records: Sequence[NewRecord], dedup_id: str | None = None) -> int:
        """Append one batch; return its base offset once durable.

        Durable means the backend's promise (disk: the fsync policy;
        JetStream: acknowledged by a quorum of replicas).  The batch is
        MiniMQ's own, and its values read back as plain ``bytes`` that HTTP
        readers serve without checking them again: only values a transport
        has checked belong here (the HTTP API's are strict JSON).  Bytes from
        anywhere else go in by :meth:`append_batches`.

        ``dedup_id`` (at most 64 characters of ``[A-Za-z0-9_-]``) names this
        exact batch: the same id again means the same records again.  A
        backend shared by several processes may then answer a repeat within
        its duplicate window with the original base offset and store nothing
        (JetStream: ``Nats-Msg-Id``); one that only this process writes may
        ignore it (the core's own window covers this process).
        """
        ...

    async def append_batches(self, frames: Sequence[bytearray]) -> int:
        """Append checked RecordBatch v2 frames from a client; the first one's base offset.

        Each frame is a client's batch, so its values read back as
        :class:`~minimq.core.records.ClientBytes`.  Returns once durable, as
        :meth:`append`.  A backend may patch the frames' base offset and
        ``partitionLeaderEpoch`` (outside the CRC) in place.
        """
        ...

    async def read(self, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        """Records from ``offset`` (may be mid-batch), at most the given limits.

        Returns at least one record when ``offset`` is below the end offset
        even if that record alone exceeds ``max_bytes``, and ``[]`` at the end
        offset.  Raises ``OffsetOutOfRange`` when ``offset`` is below the
        start or above the end offset.
        """
        ...

    async def read_raw(self, offset: int, max_bytes: int) -> tuple[list[memoryview | bytes], int]:
        """RecordBatch v2 frames from the one that *contains* ``offset``, and the next offset.

        Each item is one or more whole frames (the first may start before
        ``offset``).  At most ``max_bytes`` in all, but at least the first
        frame whatever its size below the end offset; ``([], offset)`` at the
        end offset.  ``OffsetOutOfRange`` as for :meth:`read`.  A backend that
        does not store frames encodes them from its records (values of client
        origin in batches marked as a client's).
        """
        ...

    async def offset_for_timestamp(self, timestamp: int) -> int:
        """First offset whose timestamp is >= ``timestamp`` (the end offset if none)."""
        ...

    def recent_producer_batches(self, scan_bytes: int) -> Callable[[], list[BatchHeader]]:
        """Blocking work (for a worker thread) listing the headers of the frames
        with a producer id in about the last ``scan_bytes`` of the log, oldest first.

        A backend that keeps no frames may return work that lists none: an
        idempotent producer's state is then not recovered across restarts.
        """
        ...


class ProducerIdStore(Protocol):
    """Hands out producer ids that are never handed out again, across restarts."""

    async def allocate(self) -> int:
        """A new producer id (durably reserved before it is returned)."""
        ...


class LogStore(Protocol):
    """Every topic of the backend: names, configs and partition logs."""

    async def topic_names(self) -> list[str]: ...

    async def topic_config(self, topic: str) -> TopicConfig:
        """The topic's config, its ``topic_id`` set (``TopicNotFound`` if there is none)."""
        ...

    async def create_topic(self, topic: str, config: TopicConfig) -> None:
        """Create ``topic`` under a new ``topic_id`` (``config``'s is ignored).

        ``TopicAlreadyExists`` if it exists; ``InvalidConfig`` for a setting
        the backend cannot honour.
        """
        ...

    async def delete_topic(self, topic: str) -> None: ...

    async def update_retention(
        self, topic: str, retention_ms: int | None, retention_bytes: int | None
    ) -> TopicConfig:
        """Set the topic's retention (None: unlimited), persisted; return the new config.

        Invalid settings raise ``InvalidConfig``; the backend applies them from now on.
        """
        ...

    def partition(self, topic: str, partition: int) -> PartitionLog:
        """A handle on one partition; may raise ``TopicNotFound`` now or when used."""
        ...

    async def apply_retention(self) -> int:
        """Remove what is past each topic's retention; return how many units went.

        A backend whose engine expires records by itself returns 0.
        """
        ...

    def validate_topic_name(self, name: str) -> None:
        """Raise ``InvalidTopicName`` if the backend cannot carry ``name``.

        Asked after the core's own rule
        (:func:`~minimq.core.topic_config.validate_topic_name`) passed.
        """
        ...

    async def close(self) -> None: ...


class OffsetStore(Protocol):
    """Committed consumer-group offsets, each for one topic incarnation (its ``topic_id``).

    A commit that returned survives a crash.  A commit that was refused never
    takes effect.  Offsets of a topic incarnation that no longer exists are
    never returned: a topic deleted and created again starts with no commits.
    Reads see the latest acknowledged write from any process sharing the
    backend.
    """

    async def commit(
        self,
        group: str,
        offsets: Iterable[tuple[str, int, int]],
        topic_ids: Mapping[str, str] | None = None,
        metadata: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        """Durably store ``(topic, partition, offset)`` triples for ``group``.

        ``topic_ids`` names the incarnation of each topic the offsets were
        checked against (default: the current one).  A topic that no longer
        exists, or exists as another incarnation, raises ``TopicNotFound`` and
        nothing is stored.  ``metadata`` is a string per ``(topic, partition)``
        kept with its offset (Kafka's commit metadata); a partition committed
        without one has none.
        """
        ...

    async def committed(self, group: str) -> dict[tuple[str, int], int]:
        """``(topic, partition) -> offset`` of the group's commits on existing topics."""
        ...

    async def metadata(self, group: str) -> dict[tuple[str, int], str]:
        """The non-empty commit metadata of :meth:`committed`'s partitions."""
        ...

    async def group_names(self) -> list[str]: ...

    async def delete_group(self, group: str) -> None: ...

    async def delete_topic(self, topic: str) -> None:
        """Forget every group's offsets for a deleted topic (never raises)."""
        ...

    async def close(self) -> None: ...


class GatewayAddress(NamedTuple):
    """Where one broker process (gateway) answers: what another gateway forwards to.

    ``holder_id`` names the process, not the machine: a gateway restarted on
    the same address is a new holder (its in-memory group state is gone).
    ``kafka_port`` is 0 when the gateway has no Kafka listener.
    """

    http_url: str
    kafka_host: str
    kafka_port: int
    holder_id: str


class GroupLeases(Protocol):
    """Which gateway coordinates each consumer group: a lease per group, compare-and-set.

    Kafka's model: one coordinator per group.  The lease's owner is the only
    gateway that keeps the group's membership in memory and commits for it;
    every other gateway forwards (HTTP) or answers NOT_COORDINATOR (Kafka).
    A lease lasts ``ttl_s`` from the write that claimed or renewed it, as the
    writer's wall clock measures it; once it has expired, any gateway may take
    it over.  Claims and renewals name the revision they replace, so two
    gateways racing for one group never both win.
    """

    @property
    def single_gateway(self) -> bool:
        """True when only this process can use the backend: every group is always its own."""
        ...

    async def owner(self, group: str, holder: GatewayAddress, ttl_s: float) -> GatewayAddress:
        """The group's live owner; ``holder`` claims it when there is none.

        When ``holder`` already owns it, its lease is renewed.  The answer is
        ``holder`` itself exactly when ``holder`` holds a lease written by this
        call (valid ``ttl_s`` from the call's start).
        """
        ...

    async def renew(self, group: str, holder: GatewayAddress, ttl_s: float) -> bool:
        """Extend ``holder``'s lease by ``ttl_s`` from now; False if another gateway holds it."""
        ...

    async def release(self, group: str, holder: GatewayAddress) -> None:
        """Give the lease up (clean shutdown) so another gateway may claim it at once."""
        ...


class SingleGatewayLeases:
    """The leases of a backend only one process can open: that process owns every group."""

    @property
    def single_gateway(self) -> bool:
        return True

    async def owner(self, group: str, holder: GatewayAddress, ttl_s: float) -> GatewayAddress:
        return holder

    async def renew(self, group: str, holder: GatewayAddress, ttl_s: float) -> bool:
        return True

    async def release(self, group: str, holder: GatewayAddress) -> None:
        return None


class Storage(Protocol):
    """An opened backend: the topic logs, the group offsets and the producer ids."""

    @property
    def logs(self) -> LogStore: ...

    @property
    def offsets(self) -> OffsetStore: ...

    @property
    def producer_ids(self) -> ProducerIdStore: ...

    @property
    def group_leases(self) -> GroupLeases: ...

    def add_append_listener(self, listener: AppendListener) -> None:
        """Call ``listener(topic, partition)`` on the event loop after records are stored.

        For appends made by any process sharing this backend (the disk engine:
        only this process can open the data directory, so its own appends),
        and for each partition of a deleted topic, so that waiters wake and
        find it gone.  A listener must not raise.
        """
        ...

    async def close(self) -> None: ...
