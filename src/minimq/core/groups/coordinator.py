"""The group coordinator: membership, generations, fencing, and group reads and commits.

It sits beside the broker's fetch (both read through
:class:`~minimq.core.reader.PartitionReader`) and keeps every consumer
group's state (:class:`~minimq.core.groups.group.Group`). Its promise: a
group never hands one record to two live members in one generation, never
skips a record, and a commit that returned is what the next owner starts
from.

How that holds:

- Membership changes (join, leave, session expiry, reset) are synchronous
  steps on the event loop: the generation ends, the next one is assigned and
  the old one is fenced in one step, with no await in between.
- Every member request names its member id and may name its generation;
  commits must. A stale generation, an unknown member or a partition the
  member does not own in this generation is refused (``MemberFenced``) and
  nothing happens.
- One lock per group covers *set up positions → read → commit → advance*:
  a new owner's positions are set from the committed offsets only while it
  holds the lock, so it sees every commit that returned before. With
  ``commit=true`` the positions move only after the commit returned, and
  only where the member still owns the partition; a failed commit leaves
  them where they were, so the same records come again (never skipped).
- Requests without a member id are never members. They may read and commit
  only while the group has no live members (Kafka's rule for simple
  consumers, and what the original ``/consume`` is), else
  ``GroupHasMembers``.
- Session timeouts run on the monotonic clock; a member with a request in
  flight (a long-poll) is alive.

Protocol types: ``http`` groups are assigned here (server-side, by the
group's assignor); ``kafka`` groups run Kafka's classic protocol (JoinGroup,
SyncGroup, Heartbeat, LeaveGroup with client-side assignment), in
:attr:`GroupCoordinator.kafka` (:mod:`minimq.core.groups.kafka_protocol`).
Both share one table of groups (one name space), the generation counter,
the per-group locks and the offset store: a Kafka consumer and an HTTP one
resume from each other's commits. A group has one protocol type while it has
members (or, for ``kafka``, member ids handed out and not yet used): an HTTP
member's join, read, heartbeat, leave or commit for a ``kafka`` group is
refused with ``InconsistentGroupProtocol``, and so is a Kafka member's join or
commit for an ``http`` group. An offset reset or deletion of a ``kafka`` group
waits until it has no live members (``GroupHasMembers``), as Kafka's tools do:
its positions are the clients', so the broker cannot move them.

Event-loop only (not thread-safe).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable, Sequence

from minimq.core.groups.assignors import ASSIGNORS
from minimq.core.groups.fenced_offsets import FencedOffsetStore
from minimq.core.groups.group import Group, GroupState, Member, TopicPartition
from minimq.core.groups.kafka_protocol import KafkaGroup, KafkaGroups, KafkaMember
from minimq.core.groups.ownership import GroupOwnership
from minimq.core.keyed_locks import KeyedLocks
from minimq.core.models import (
    CommitOffset,
    ConsumedMessage,
    FetchLimits,
    GroupFetchResult,
    GroupInfo,
    GroupMembership,
    GroupOffset,
    GroupSummary,
    MemberInfo,
    PartitionRecord,
    ResetPolicy,
    StartPosition,
)
from minimq.core.reader import PartitionReader, record_size
from minimq.core.storage_seam import GroupLeases, OffsetStore, SingleGatewayLeases
from minimq.errors import (
    GroupHasMembers,
    GroupNotFound,
    InconsistentGroupProtocol,
    InvalidRequest,
    NotCoordinator,
    NotPartitionOwner,
    OffsetOutOfRange,
    PartitionNotFound,
    RebalanceInProgress,
    StaleGeneration,
    TopicNotFound,
    UnknownMember,
)

log = logging.getLogger("minimq.groups")

HTTP_PROTOCOL = "http"
# How often a fetch that named no generation is set up again when rebalances keep
# ending the generation it was being served in, before it is refused.
_SERVE_ATTEMPTS = 3


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _never() -> bool:
    return False


def _unknown(name: str, member_id: str) -> UnknownMember:
    return UnknownMember(f"{member_id!r} is not a member of group {name!r}; join again")


def _refuse_kafka(group: Group | None) -> None:
    if isinstance(group, KafkaGroup):
        raise InconsistentGroupProtocol(
            f"group {group.name!r} is a Kafka consumer group; an HTTP member cannot join,"
            " read, heartbeat, leave or commit for it"
        )


def _changed(
    topic: str, before: dict[int, int], after: dict[int, int]
) -> list[tuple[str, int, int]]:
    return [(topic, p, o) for p, o in after.items() if before.get(p) != o]


class GroupCoordinator:
    def __init__(
        self,
        reader: PartitionReader,
        offsets: OffsetStore,
        session_timeout_ms: int,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
        *,
        leases: GroupLeases | None = None,
    ) -> None:
        self._reader = reader
        # Which groups this gateway coordinates (all of them, until started over a shared
        # backend); every commit goes through the lease check of FencedOffsetStore.
        self.ownership = GroupOwnership(
            leases or SingleGatewayLeases(), self.forget_group, monotonic
        )
        offsets = FencedOffsetStore(offsets, self.ownership)
        self._offsets = offsets
        self._session_timeout_s = session_timeout_ms / 1000
        self._monotonic = monotonic
        self._wall_ms = wall_ms
        self._groups: dict[str, Group] = {}
        self._locks = KeyedLocks()
        # One counter for every group: a generation number is never reused in
        # this process, even by a group that emptied (and was forgotten) and
        # came back, so a request from before can never look current.
        self._generations = itertools.count(1)
        self.kafka = KafkaGroups(
            groups=self._groups,
            live=self._live,
            generations=self._generations,
            group_names=self.group_names,
            reader=reader,
            offsets=offsets,
            locks=self._locks,
            monotonic=monotonic,
            wall_ms=wall_ms,
        )

    # -- membership --------------------------------------------------------------

    def _live(self, name: str) -> Group | None:
        """The group's state with expired members removed; None once it has no members."""
        group = self._groups.get(name)
        if group is None:
            return None
        if isinstance(group, KafkaGroup):
            self.kafka.expire(group, self._monotonic())
            return self._groups.get(name)
        gone = group.expire(self._monotonic())
        if gone:
            log.info("group %s: session expired for %s", name, ", ".join(sorted(gone)))
            self._rebalance(group)
        return self._groups.get(name)

    def _rebalance(self, group: Group) -> None:
        if isinstance(group, KafkaGroup):
            self.kafka.membership_changed(group)
            return
        group.rebalance(next(self._generations), self._reader.known_partitions)
        if group.state is GroupState.EMPTY:
            # Nothing in memory outlives the members: positions are meaningful
            # only to an owner, and the committed offsets are in the store.
            del self._groups[group.name]
        self._reader.signals.notify(("group", group.name))

    def _group_for(self, name: str, protocol_type: str, assignor: str | None) -> Group:
        group = self._live(name)
        if group is None:
            group = self._groups[name] = Group(name, protocol_type, assignor or "range")
        elif group.protocol_type != protocol_type:
            raise InconsistentGroupProtocol(
                f"group {name!r} has {group.protocol_type} members; a {protocol_type}"
                " member cannot join it"
            )
        elif assignor is not None and assignor != group.assignor:
            raise InconsistentGroupProtocol(
                f"group {name!r} uses the {group.assignor} assignor, not {assignor}"
            )
        return group

    def _touch(self, member: Member) -> None:
        member.last_seen = self._monotonic()
        member.last_seen_wall_ms = self._wall_ms()

    def _enter(
        self, name: str, topic: str, member_id: str, assignor: str | None = None
    ) -> tuple[Group, Member]:
        """Add ``member_id`` to the group (or subscribe it to ``topic``), rebalancing if needed."""
        group = self._group_for(name, HTTP_PROTOCOL, assignor)
        member = group.members.get(member_id)
        if member is None:
            now = self._monotonic()
            member = Member(member_id, {topic}, self._session_timeout_s, now, self._wall_ms())
            group.members[member_id] = member
            log.info("group %s: %s joined (topic %s)", name, member_id, topic)
            self._rebalance(group)
        elif topic not in member.topics:
            member.topics.add(topic)
            self._rebalance(group)
        self._touch(member)
        return group, member

    def _membership(self, group: Group, member_id: str, topic: str) -> GroupMembership:
        return GroupMembership(member_id, group.generation, group.owned(member_id, topic))

    async def join(
        self,
        name: str,
        topic: str,
        member_id: str | None = None,
        assignor: str | None = None,
    ) -> GroupMembership:
        """Join the group, or join again as a member; a new id when none is given.

        A member that joins again (after being fenced, say) learns the current
        generation and starts over from the committed offsets on the
        partitions it owns: its reads since its last commit come again, so a
        commit that was refused is never left without the records to redo it.
        """
        await self._reader.config(topic)
        if assignor is not None and assignor not in ASSIGNORS:
            raise InvalidRequest(f"assignor must be one of {', '.join(sorted(ASSIGNORS))}")
        member_id = member_id or uuid.uuid4().hex
        group, _ = self._enter(name, topic, member_id, assignor)
        for partition in group.owned(member_id, topic):
            # No lock needed: a committing fetch in flight advances only positions
            # that still exist, and the next set-up reads the committed offset.
            group.positions.pop((topic, partition), None)
        return self._membership(group, member_id, topic)

    async def heartbeat(
        self, name: str, topic: str, member_id: str, generation: int | None = None
    ) -> GroupMembership:
        """Keep ``member_id`` alive; a first heartbeat without a generation joins it."""
        await self._reader.config(topic)
        group, _ = self._admit(name, topic, member_id, generation)
        return self._membership(group, member_id, topic)

    def _admit(
        self, name: str, topic: str, member_id: str, generation: int | None
    ) -> tuple[Group, Member]:
        """The member, checked against ``generation``; an unknown one joins if none is given.

        An unknown member that names a generation was a member once (it
        expired, or left): it must rejoin explicitly, not slip back in.
        """
        group = self._live(name)
        _refuse_kafka(group)
        if group is not None and member_id in group.members:
            # Heard from, so alive, even if refused: a member busy with its last
            # records during a rebalance must not also lose its session.
            self._touch(group.members[member_id])
            group.check(member_id, generation)
        elif generation is not None:
            raise _unknown(name, member_id)
        return self._enter(name, topic, member_id)

    def _checked(self, name: str, member_id: str, generation: int | None) -> Group:
        group = self._live(name)
        if group is None:
            raise _unknown(name, member_id)
        _refuse_kafka(group)
        group.check(member_id, generation)
        return group

    def leave(self, name: str, topic: str, member_id: str) -> None:
        """Stop reading ``topic``; a member reading nothing else leaves. Idempotent."""
        group = self._live(name)
        _refuse_kafka(group)
        member = group.members.get(member_id) if group is not None else None
        if group is None or member is None:
            return
        member.topics.discard(topic)
        if not member.topics:
            del group.members[member_id]
            log.info("group %s: %s left", name, member_id)
        self._rebalance(group)

    # -- reads -------------------------------------------------------------------

    async def _committed_or_reset(
        self, name: str, topic: str, partition: int, reset: ResetPolicy
    ) -> int:
        plog = await self._reader.partition(topic, partition)
        committed = (await self._offsets.committed(name)).get((topic, partition))
        start, end, _ = await plog.bounds()
        if committed is None or not start <= committed <= end:
            return start if reset == "earliest" else end
        return committed

    async def _read_from(
        self, topic: str, positions: dict[int, int], limits: FetchLimits
    ) -> list[PartitionRecord]:
        """Records of ``positions``' partitions in order, within ``limits``."""
        taken: list[PartitionRecord] = []
        max_records, max_bytes = limits.max_records, limits.max_bytes
        for partition, position in positions.items():
            if max_records <= 0 or max_bytes <= 0:
                break
            plog = await self._reader.partition(topic, partition)
            records = await self._reader.read(plog, position, FetchLimits(max_records, max_bytes))
            taken.extend(PartitionRecord(partition, r) for r in records)
            max_records -= len(records)
            max_bytes -= sum(record_size(r) for r in records)
        self._reader.count_fetched(topic, [item.record for item in taken])
        return taken

    @staticmethod
    def _next_positions(
        positions: dict[int, int], records: Sequence[PartitionRecord]
    ) -> dict[int, int]:
        after = dict(positions)
        for item in records:
            after[item.partition] = item.record.offset + 1
        return after

    async def fetch(
        self,
        name: str,
        topic: str,
        member_id: str | None,
        limits: FetchLimits,
        *,
        generation: int | None = None,
        commit: bool = False,
        auto_offset_reset: ResetPolicy = "earliest",
        requester_gone: Callable[[], bool] = _never,
    ) -> GroupFetchResult:
        """Records for ``member_id`` from its partitions' positions.

        A member id not yet in the group joins it, unless a generation is
        given (then it is refused: it was a member once and must rejoin).
        Without a member id this is a read without membership. With
        ``commit`` the new positions are committed durably before this
        returns, and advanced only once that commit returned.

        ``requester_gone`` tells whether whoever asked can still receive the
        answer (its connection is open): a long-poll that ends after its
        client went away reads and commits nothing, so no record is handed
        to nobody.
        """
        await self._reader.config(topic)
        if member_id is None:
            return await self._fetch_without_membership(
                name,
                topic,
                limits,
                commit=commit,
                reset=auto_offset_reset,
                requester_gone=requester_gone,
            )
        group, member = self._admit(name, topic, member_id, generation)
        member.in_flight += 1
        try:
            if limits.wait_ms > 0:
                await self._wait_as_member(
                    group,
                    member,
                    topic,
                    pinned=generation,
                    limits=limits,
                    reset=auto_offset_reset,
                )
            async with self._locks.hold(name):
                return await self._serve_member(
                    name,
                    topic,
                    member_id,
                    pinned=generation,
                    limits=limits,
                    commit=commit,
                    reset=auto_offset_reset,
                    requester_gone=requester_gone,
                )
        finally:
            member.in_flight -= 1
            self._touch(member)

    async def _peek_positions(
        self, group: Group, member_id: str, topic: str, reset: ResetPolicy
    ) -> dict[int, int]:
        """Where the member would read now (without setting anything up)."""
        if self._groups.get(group.name) is not group or member_id not in group.members:
            return {}
        peeked = {}
        for p in group.owned(member_id, topic):
            position = group.positions.get((topic, p))
            if position is None:
                position = await self._committed_or_reset(group.name, topic, p, reset)
            peeked[p] = position
        return peeked

    async def _wait_as_member(
        self,
        group: Group,
        member: Member,
        topic: str,
        *,
        pinned: int | None,
        limits: FetchLimits,
        reset: ResetPolicy,
    ) -> None:
        # A member that owns nothing waits too (no busy loop), and wakes when a
        # rebalance gives it partitions with data. A request that named its
        # generation returns as soon as that generation is over: it will be refused.
        def generation_over() -> bool:
            if self._groups.get(group.name) is not group:
                return True
            return pinned is not None and group.generation != pinned

        await self._reader.wait_for_data(
            topic,
            lambda: self._peek_positions(group, member.member_id, topic, reset),
            limits.wait_ms,
            also_wake_on=[("group", group.name)],
            stop=generation_over,
        )

    async def _serve_member(
        self,
        name: str,
        topic: str,
        member_id: str,
        *,
        pinned: int | None,
        limits: FetchLimits,
        commit: bool,
        reset: ResetPolicy,
        requester_gone: Callable[[], bool],
    ) -> GroupFetchResult:
        """Set up positions, read, commit if asked, advance; the caller holds the group lock.

        A request that named its generation (``pinned``) is refused once that
        generation is over, rather than served partitions the member may no
        longer own; one that did not is served in the current generation.
        """
        for attempt in itertools.count(1):
            group = self._checked(name, member_id, pinned)
            generation = group.generation
            owned = group.owned(member_id, topic)
            missing = [p for p in owned if (topic, p) not in group.positions]
            found = {p: await self._committed_or_reset(name, topic, p, reset) for p in missing}
            # Each await above and the read below may suspend (a networked backend), and
            # a join or a session expiry rebalances without this lock: serving what was
            # set up for a generation that ended meanwhile would hand the new owner of a
            # partition the same records.
            if not self._still_serving(group, member_id, generation, topic=topic, owned=owned):
                self._refuse_ended(name, generation, pinned, attempt)
                continue
            for p, offset in found.items():
                group.positions.setdefault((topic, p), offset)
            positions = {p: group.positions[(topic, p)] for p in owned}
            if requester_gone():
                return GroupFetchResult(name, topic, member_id, generation, owned, [], positions)
            records = await self._read_from(topic, positions, limits)
            if self._still_serving(group, member_id, generation, topic=topic, owned=owned):
                break
            self._refuse_ended(name, generation, pinned, attempt)
        after = self._next_positions(positions, records)
        if commit and records:
            changed = _changed(topic, positions, after)
            await self._store_commit(name, changed, await self._incarnation(topic))
        for p, offset in after.items():
            # Only where this member still owns the partition in this generation:
            # a rebalance during the commit moved the rest, and their new owner
            # starts from the offsets just committed.
            if group.owners.get((topic, p)) == member_id and (topic, p) in group.positions:
                group.positions[(topic, p)] = offset
        return GroupFetchResult(name, topic, member_id, generation, owned, records, after)

    def _still_serving(
        self, group: Group, member_id: str, generation: int, *, topic: str, owned: list[int]
    ) -> bool:
        """Whether ``member_id`` still owns ``owned`` of ``topic`` in ``generation``."""
        return (
            self._live(group.name) is group
            and group.generation == generation
            and member_id in group.members
            and group.owned(member_id, topic) == owned
        )

    @staticmethod
    def _refuse_ended(name: str, generation: int, pinned: int | None, attempt: int) -> None:
        """Refuse a fetch whose generation ended while it was served, or let it start again.

        A request that named its generation is refused at once (it asked for that
        one); one that did not is set up again in the new generation, a few times.
        """
        if pinned is not None:
            raise StaleGeneration(
                f"generation {generation} of group {name!r} ended while the fetch was served;"
                " join again"
            )
        if attempt >= _SERVE_ATTEMPTS:
            raise RebalanceInProgress(f"group {name!r} keeps rebalancing; join again")

    def _refuse_kafka_members(self, name: str, what: str) -> None:
        group = self._live(name)
        if isinstance(group, KafkaGroup) and group.members:
            raise GroupHasMembers(
                f"group {name!r} has {len(group.members)} live Kafka member(s): {what} waits"
                " until they stopped (their positions are theirs, not the broker's)"
            )

    def _refuse_if_members(self, name: str, what: str) -> None:
        group = self._live(name)
        if group is not None and group.members:
            raise GroupHasMembers(
                f"group {name!r} has {len(group.members)} live member(s): {what} needs a"
                " member_id (and generation) of a member, or an idle group"
            )

    async def _fetch_without_membership(
        self,
        name: str,
        topic: str,
        limits: FetchLimits,
        *,
        commit: bool,
        reset: ResetPolicy,
        requester_gone: Callable[[], bool] = _never,
    ) -> GroupFetchResult:
        self._refuse_if_members(name, "a group read")
        partitions = list(range(await self._reader.partitions_of(topic)))

        async def from_committed() -> dict[int, int]:
            return {p: await self._committed_or_reset(name, topic, p, reset) for p in partitions}

        if limits.wait_ms > 0:
            await self._reader.wait_for_data(topic, from_committed, limits.wait_ms)
        async with self._locks.hold(name):
            self._refuse_if_members(name, "a group read")
            positions = await from_committed()
            if requester_gone():
                return GroupFetchResult(name, topic, None, None, partitions, [], positions)
            records = await self._read_from(topic, positions, limits)
            after = self._next_positions(positions, records)
            if commit and records:
                changed = _changed(topic, positions, after)
                await self._store_commit(name, changed, await self._incarnation(topic))
        return GroupFetchResult(name, topic, None, None, partitions, records, after)

    async def consume(self, topic: str, consumer_id: str) -> ConsumedMessage | None:
        """The original ``/consume``: ``consumer_id``'s next record, committed before returning.

        ``consumer_id`` is a group read without membership, so concurrent
        callers sharing it never get the same record and never skip one.
        """
        if not await self._reader.exists(topic):
            return None
        result = await self._fetch_without_membership(
            consumer_id, topic, FetchLimits(max_records=1), commit=True, reset="earliest"
        )
        if not result.records:
            return None
        first = result.records[0]
        return ConsumedMessage(first.partition, first.record)

    # -- commits -----------------------------------------------------------------

    async def _check_commit_range(self, offsets: Sequence[CommitOffset]) -> dict[str, str]:
        """Check every offset against its partition; the topic incarnations checked."""
        for item in offsets:
            plog = await self._reader.partition(item.topic, item.partition)
            end = (await plog.bounds()).end
            if not 0 <= item.offset <= end:
                raise OffsetOutOfRange(
                    f"offset {item.offset} of {item.topic}/{item.partition} is outside 0..{end}"
                )
        incarnations: dict[str, str] = {}
        for item in offsets:
            incarnations.update(await self._incarnation(item.topic))
        return incarnations

    def _check_owner(
        self, name: str, member_id: str, generation: int, offsets: Sequence[CommitOffset]
    ) -> None:
        group = self._checked(name, member_id, generation)
        for item in offsets:
            if group.owners.get((item.topic, item.partition)) != member_id:
                raise NotPartitionOwner(
                    f"{member_id!r} does not own {item.topic}/{item.partition} in generation"
                    f" {generation} of group {name!r}"
                )

    async def commit(
        self,
        name: str,
        offsets: Sequence[CommitOffset],
        member_id: str | None = None,
        generation: int | None = None,
    ) -> list[CommitOffset]:
        """Durably store ``offsets`` (next offsets to read) for the group.

        A member commits only partitions it owns in the current generation;
        without a member id the group must have no live members.
        """
        if member_id is not None and generation is None:
            raise InvalidRequest("a member's commit needs its 'generation'")
        incarnations = await self._check_commit_range(offsets)
        async with self._locks.hold(name):
            # Checked with the lock held: the generation may have ended while waiting for it.
            if member_id is None:
                self._refuse_if_members(name, "a commit")
            else:
                assert generation is not None
                self._check_owner(name, member_id, generation, offsets)
            entries = [(o.topic, o.partition, o.offset) for o in offsets]
            await self._store_commit(name, entries, incarnations)
        return list(offsets)

    async def _incarnation(self, topic: str) -> dict[str, str]:
        """``{topic: topic_id}`` of the topic as it is now (TopicNotFound once it is gone)."""
        return {topic: (await self._reader.config(topic)).topic_id or ""}

    async def _store_commit(
        self, name: str, offsets: list[tuple[str, int, int]], incarnations: dict[str, str]
    ) -> None:
        """Commit ``offsets``, checked against the topic incarnations in ``incarnations``.

        Commits are keyed by topic id: one checked against a topic that was
        deleted (and perhaps created again) while it waited for the group lock
        is refused with ``TopicNotFound``, never applied to the new topic.
        """
        await self._offsets.commit(name, offsets, incarnations)

    async def reset(
        self, name: str, topic: str, start: StartPosition, partition: int | None = None
    ) -> GroupInfo:
        """Move the group's committed offsets on ``topic`` (one partition or all).

        Live members are fenced: the generation ends, so no member can commit
        a position from before the reset over it, and every owner reads from
        the new offsets.
        """
        config = await self._reader.config(topic)
        partitions = [partition] if partition is not None else list(range(config.partitions))
        targets = [
            (
                topic,
                p,
                await self._reader.resolve_start(await self._reader.partition(topic, p), start),
            )
            for p in partitions
        ]
        incarnation = {topic: config.topic_id or ""}
        self._refuse_kafka_members(name, "an offset reset")
        async with self._locks.hold(name):
            self._refuse_kafka_members(name, "an offset reset")
            await self._store_commit(name, targets, incarnation)
            group = self._live(name)
            if group is not None:
                for p in partitions:
                    group.positions.pop((topic, p), None)
                self._rebalance(group)
        return await self.describe(name)

    async def delete(self, name: str) -> None:
        """Forget the group's offsets; refused while it has live members."""
        self._refuse_if_members(name, "deleting the group")
        if name not in await self._offsets.group_names():
            raise GroupNotFound(f"group {name!r} does not exist")
        async with self._locks.hold(name):
            self._refuse_if_members(name, "deleting the group")
            await self._offsets.delete_group(name)

    def expire_sessions(self) -> None:
        """Remove every member past its session timeout (run periodically).

        Expiry also happens on every request to a group; this sweep makes a
        silent group's partitions move (and its memory go) without one.
        """
        for name in list(self._groups):
            self._live(name)

    def forget_group(self, name: str) -> None:
        """This gateway lost the group's ownership lease: drop its state; members must rejoin.

        Waiting long-polls wake and end (their generation is over), and waiting
        Kafka JoinGroup/SyncGroup calls are answered NOT_COORDINATOR, so every
        member goes to the new owner and joins there.
        """
        group = self._groups.pop(name, None)
        if group is None:
            return
        if isinstance(group, KafkaGroup):
            self.kafka.abandon(
                group, NotCoordinator(f"this gateway no longer coordinates group {name!r}")
            )
        self._reader.signals.notify(("group", name))

    def forget_topic(self, topic: str) -> None:
        """A topic was deleted: its positions go, and groups reading it rebalance."""
        for group in list(self._groups.values()):
            if any(topic in m.topics for m in group.members.values()):
                for key in [k for k in group.positions if k[0] == topic]:
                    del group.positions[key]
                self._rebalance(group)

    # -- describing --------------------------------------------------------------

    async def _topics_read(
        self, committed: dict[tuple[str, int], int], group: Group | None
    ) -> list[str]:
        topics = {topic for topic, _ in committed}
        if group is not None:
            for member in group.members.values():
                topics.update(member.topics)
        return sorted([t for t in topics if await self._reader.exists(t)])

    async def _offsets_of(self, name: str, group: Group | None) -> list[GroupOffset]:
        """Every partition of every topic the group reads, committed or not."""
        committed = await self._offsets.committed(name)
        found = []
        for topic in await self._topics_read(committed, group):
            for p in range(await self._reader.partitions_of(topic)):
                try:
                    plog = await self._reader.partition(topic, p)
                except (TopicNotFound, PartitionNotFound):
                    break  # deleted while this was looked at
                start, end, _ = await plog.bounds()
                found.append(GroupOffset(topic, p, committed.get((topic, p)), end, start))
        return found

    async def describe(self, name: str) -> GroupInfo:
        group = self._live(name)
        if group is None and name not in await self._offsets.group_names():
            raise GroupNotFound(f"group {name!r} does not exist")
        members: list[MemberInfo] = []
        if group is not None:
            for member_id, member in sorted(group.members.items()):
                client = (
                    (member.client_id, member.client_host)
                    if isinstance(member, KafkaMember)
                    else (None, None)
                )
                # A Kafka member whose subscription names no topic (or is not
                # ConsumerProtocol) is still a member: one row without a topic.
                topics = sorted(member.topics) or ([""] if client[0] is not None else [])
                members.extend(
                    MemberInfo(
                        member_id,
                        topic,
                        group.owned(member_id, topic),
                        member.last_seen_wall_ms,
                        *client,
                    )
                    for topic in topics
                )
        return GroupInfo(
            name,
            members,
            await self._offsets_of(name, group),
            state=group.state.value if group is not None else GroupState.EMPTY.value,
            protocol_type=group.protocol_type if group is not None else None,
            generation=group.generation if group is not None else 0,
        )

    async def group_names(self) -> list[str]:
        live = [name for name in list(self._groups) if self._live(name) is not None]
        return sorted(set(await self._offsets.group_names()) | set(live))

    async def list_groups(self) -> list[GroupSummary]:
        summaries = []
        for name in await self.group_names():
            try:
                info = await self.describe(name)
            except GroupNotFound:
                continue  # its last member expired while the list was made
            summaries.append(
                GroupSummary(
                    name,
                    sorted(
                        {o.topic for o in info.offsets} | {m.topic for m in info.members if m.topic}
                    ),
                    len({m.member_id for m in info.members}),
                    info.state,
                    info.total_lag,
                    info.protocol_type,
                )
            )
        return summaries

    async def lags(self) -> list[tuple[str, GroupOffset]]:
        """Every group's place on every partition it reads (for metrics)."""
        return [
            (name, offset)
            for name in await self.group_names()
            for offset in await self._offsets_of(name, self._groups.get(name))
        ]


__all__ = ["HTTP_PROTOCOL", "GroupCoordinator", "TopicPartition"]
