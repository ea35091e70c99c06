"""Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, offsets).

Groups of protocol type ``kafka`` live in the coordinator's table beside the
``http`` ones (one name space, one generation counter, one lock per group,
one offset store), but the assignment is the clients': the broker only
gathers the members, names a leader and passes the leader's assignment on.
The semantics are those of Kafka's ``GroupCoordinator``:

- **Join.** A member's JoinGroup waits until every known member has
  rejoined (or the largest rebalance timeout of the members passed: those
  that did not rejoin are removed). The first join of an empty group also
  waits ``initial_rebalance_delay_ms``, extended by each member that arrives
  meanwhile, up to the rebalance timeout, so members starting together share
  one generation. Then a protocol (assignor) every member supports is chosen
  by vote, the next generation is taken from the coordinator's counter, and
  the leader (the previous one if it rejoined, else the first to join) gets
  every member's metadata; the others get none. A v4+ join without a member
  id gets ``MemberIdRequired`` with its id (KIP-394); until it joins with it,
  that id is *pending* and counts as a member the rebalance waits for.
- **Sync.** Members wait in SyncGroup until the leader's arrives with every
  assignment; each gets its own. A leader that does not sync within the
  largest session timeout is removed with every other member that did not
  sync, and the group rebalances.
- **Liveness.** A member waiting in JoinGroup or SyncGroup is alive; any
  other is removed once its session timeout (on the coordinator's monotonic
  clock) passes without a request. Heartbeats answer ``RebalanceInProgress``
  while a rebalance gathers members, so they rejoin. A leave, an expiry or a
  join with new metadata starts a rebalance.
- **Offsets.** A member's commit names its current generation: accepted in
  Stable and while a rebalance gathers members (clients commit before they
  rejoin), refused while the generation waits for the leader's assignment.
  A "simple" commit (no member id, generation -1) is accepted only while the
  group has no live members. Commit metadata is stored with the offset.

The broker does not check what a member commits against its assignment: the
assignment is the clients' (and may be any protocol's). Decoded
ConsumerProtocol bytes only feed describe and lag.

Not offered: static membership (a ``group_instance_id`` is refused with
``GroupInstanceIdNotSupported``); dynamic members only, so a restarted
client is a new member and its group rebalances.

Timers (join deadline, initial delay, sync deadline) run on the event loop's
clock; session expiry on the coordinator's monotonic clock. Every state
change is one synchronous step on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, TypeVar

from minimq.core.groups.consumer_protocol import decode_assignment, decode_subscription
from minimq.core.groups.group import Group, GroupState, Member
from minimq.core.groups.kafka_errors import (
    GroupInstanceIdNotSupported,
    InvalidGroupId,
    InvalidSessionTimeout,
    MemberIdRequired,
    OffsetMetadataTooLarge,
)
from minimq.core.keyed_locks import KeyedLocks
from minimq.core.reader import PartitionReader
from minimq.core.storage_seam import OffsetStore
from minimq.errors import (
    BrokerUnavailable,
    InconsistentGroupProtocol,
    MiniMQError,
    OffsetOutOfRange,
    RebalanceInProgress,
    StaleGeneration,
    UnknownMember,
)

log = logging.getLogger("minimq.groups")

KAFKA_PROTOCOL: Final = "kafka"
# The HTTP API's bound on group names, so that every Kafka group can be read over HTTP.
_GROUP_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,249}$")
_CONSUMER = "consumer"


@dataclass(frozen=True, slots=True)
class KafkaGroupSettings:
    """Kafka's broker settings of the same names (``group.*``, ``offset.metadata.max.bytes``).

    The initial delay is 300 ms, not Kafka's 3 s: a development broker's
    groups start with a few members at once, and a test should not wait.
    """

    min_session_timeout_ms: int = 6_000
    max_session_timeout_ms: int = 1_800_000
    initial_rebalance_delay_ms: int = 300
    max_metadata_bytes: int = 4096


@dataclass(frozen=True, slots=True)
class JoinedMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    """A JoinGroup answer; ``members`` lists every member for the leader only."""

    generation: int
    protocol_type: str
    protocol_name: str
    leader: str
    member_id: str
    members: list[JoinedMember]


@dataclass(frozen=True, slots=True)
class SyncResult:
    assignment: bytes
    protocol_type: str
    protocol_name: str


@dataclass(frozen=True, slots=True)
class MemberLeave:
    member_id: str
    group_instance_id: str | None
    error: MiniMQError | None


class OffsetCommitEntry(NamedTuple):
    """One partition of an OffsetCommit: the next offset to read, and its metadata."""

    topic: str
    partition: int
    offset: int
    metadata: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionCommit:
    topic: str
    partition: int
    error: MiniMQError | None


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    """An OffsetFetch answer for one partition: offset -1 and metadata "" when none."""

    topic: str
    partition: int
    offset: int
    metadata: str


@dataclass(frozen=True, slots=True)
class KafkaMemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class KafkaGroupDescription:
    group: str
    state: str
    protocol_type: str
    protocol: str
    members: list[KafkaMemberDescription]


@dataclass(frozen=True, slots=True)
class KafkaGroupListing:
    group: str
    protocol_type: str
    state: str


# A waiter gets its answer or the refusal to raise (never an exception set on
# the future: its requester may be gone, and nobody would retrieve it).
_Outcome = JoinResult | SyncResult | MiniMQError
_T = TypeVar("_T", JoinResult, SyncResult)


@dataclass
class KafkaMember(Member):
    """A member of a ``kafka`` group: what it sent in its last JoinGroup, and its waits."""

    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_s: float = 0.0
    protocol_type: str = ""
    protocols: list[tuple[str, bytes]] = field(default_factory=list)
    assignment_bytes: bytes = b""
    join_waiter: asyncio.Future[_Outcome] | None = None
    sync_waiter: asyncio.Future[_Outcome] | None = None
    synced: bool = False  # sent SyncGroup in this generation

    def expired(self, now: float) -> bool:
        # Waiting for the group is being alive (Kafka's "awaiting join/sync").
        if self.join_waiter is not None or self.sync_waiter is not None:
            return False
        return now - self.last_seen > self.session_timeout_s

    def metadata_for(self, protocol: str) -> bytes:
        return next((data for name, data in self.protocols if name == protocol), b"")


@dataclass
class KafkaGroup(Group):
    """A group's classic-protocol state besides :class:`Group`'s."""

    kafka_protocol_type: str = ""
    protocol_name: str = ""
    leader: str = ""
    # Member ids handed out with MEMBER_ID_REQUIRED -> monotonic deadline to join with.
    pending: dict[str, float] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    in_initial_delay: bool = False
    new_member_added: bool = False

    def kafka_members(self) -> list[KafkaMember]:
        found = []
        for member in self.members.values():
            assert isinstance(member, KafkaMember)
            found.append(member)
        return found

    def member(self, member_id: str) -> KafkaMember | None:
        member = self.members.get(member_id)
        assert member is None or isinstance(member, KafkaMember)
        return member

    def common_protocols(self, excluding: str | None = None) -> set[str] | None:
        """Protocol names every member (but ``excluding``) lists; None without members."""
        common: set[str] | None = None
        for member in self.kafka_members():
            if member.member_id != excluding:
                names = {name for name, _ in member.protocols}
                common = names if common is None else common & names
        return common

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _check_group_id(group: str) -> None:
    if not _GROUP_ID.match(group):
        raise InvalidGroupId("a group id is 1 to 249 characters without control characters")


def _refuse_instance_id(group_instance_id: str | None) -> None:
    if group_instance_id is not None:
        raise GroupInstanceIdNotSupported(
            "static membership (group.instance.id) is not supported; leave it unset"
        )


def _resolve(waiter: asyncio.Future[_Outcome] | None, outcome: _Outcome) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(outcome)


def _http_group(name: str) -> InconsistentGroupProtocol:
    return InconsistentGroupProtocol(
        f"group {name!r} has http members; a Kafka client cannot join or commit for it"
    )


def _unknown(name: str, member_id: str) -> UnknownMember:
    return UnknownMember(f"{member_id!r} is not a member of group {name!r}; join again")


class KafkaGroups:
    """The classic protocol over the coordinator's group table (see the module docstring)."""

    def __init__(
        self,
        *,
        groups: dict[str, Group],
        live: Callable[[str], Group | None],
        generations: Iterator[int],
        group_names: Callable[[], Awaitable[list[str]]],
        reader: PartitionReader,
        offsets: OffsetStore,
        locks: KeyedLocks,
        monotonic: Callable[[], float],
        wall_ms: Callable[[], int],
    ) -> None:
        self._groups = groups
        self._live = live
        self._generations = generations
        self._group_names = group_names
        self._reader = reader
        self._offsets = offsets
        self._locks = locks
        self._monotonic = monotonic
        self._wall_ms = wall_ms
        self.settings = KafkaGroupSettings()
        self._closed = False

    def configure(self, settings: KafkaGroupSettings) -> None:
        self.settings = settings

    # -- lookups -----------------------------------------------------------------

    def _kafka_group(self, name: str, member_id: str) -> KafkaGroup:
        """The live kafka group ``name``; UnknownMember when there is none."""
        group = self._live(name)
        if group is None:
            raise _unknown(name, member_id)
        if not isinstance(group, KafkaGroup):
            raise _http_group(name)
        return group

    def _member(self, group: KafkaGroup, member_id: str) -> KafkaMember:
        member = group.member(member_id)
        if member is None:
            raise _unknown(group.name, member_id)
        return member

    def _touch(self, member: Member) -> None:
        member.last_seen = self._monotonic()
        member.last_seen_wall_ms = self._wall_ms()

    # -- join --------------------------------------------------------------------

    async def join(
        self,
        group: str,
        member_id: str,
        *,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: Sequence[tuple[str, bytes]],
        api_version: int,
    ) -> JoinResult:
        """JoinGroup: wait for the rebalance and return this member's part of it."""
        _check_group_id(group)
        _refuse_instance_id(group_instance_id)
        self._refuse_if_closed()
        settings = self.settings
        if (
            not settings.min_session_timeout_ms
            <= session_timeout_ms
            <= (settings.max_session_timeout_ms)
        ):
            raise InvalidSessionTimeout(
                f"session timeout {session_timeout_ms} ms is outside"
                f" {settings.min_session_timeout_ms}..{settings.max_session_timeout_ms} ms"
            )
        if not protocol_type or not protocols:
            raise InconsistentGroupProtocol("a join needs a protocol type and protocols")
        existing = self._live(group)
        if existing is not None and not isinstance(existing, KafkaGroup):
            raise _http_group(group)
        if existing is not None:
            self._check_protocols(existing, member_id, protocol_type, protocols)
        kafka_group = existing
        if kafka_group is None:
            kafka_group = KafkaGroup(group, KAFKA_PROTOCOL)
            self._groups[group] = kafka_group

        request = _JoinRequest(
            client_id,
            client_host,
            session_timeout_ms / 1000,
            rebalance_timeout_ms / 1000,
            protocol_type,
            list(protocols),
        )
        if not member_id:
            new_id = f"{client_id}-{uuid.uuid4()}"
            if api_version >= 4:
                kafka_group.pending[new_id] = self._monotonic() + request.session_timeout_s
                raise MemberIdRequired(new_id)
            return await self._join_new(kafka_group, new_id, request)
        if kafka_group.pending.pop(member_id, None) is not None:
            return await self._join_new(kafka_group, member_id, request)
        member = kafka_group.member(member_id)
        if member is None:
            self._forget_if_idle(kafka_group)
            raise _unknown(group, member_id)
        return await self._join_known(kafka_group, member, request)

    @staticmethod
    def _check_protocols(
        group: KafkaGroup,
        member_id: str,
        protocol_type: str,
        protocols: Sequence[tuple[str, bytes]],
    ) -> None:
        """The member must speak the others' protocol type and share an assignor with all."""
        others = [m for m in group.kafka_members() if m.member_id != member_id]
        if not others:
            return
        common = group.common_protocols(excluding=member_id) or set()
        names = {name for name, _ in protocols}
        if any(m.protocol_type != protocol_type for m in others) or not common & names:
            raise InconsistentGroupProtocol(
                f"group {group.name!r} runs protocol type {others[0].protocol_type!r} with"
                f" assignors {sorted(common)}; this member offers {protocol_type!r}"
                f" {sorted(names)}"
            )

    async def _join_new(
        self, group: KafkaGroup, member_id: str, request: _JoinRequest
    ) -> JoinResult:
        now = self._monotonic()
        member = KafkaMember(member_id, set(), request.session_timeout_s, now, self._wall_ms())
        request.apply(member)
        group.members[member_id] = member
        group.new_member_added = True
        log.info("group %s: kafka member %s joined", group.name, member_id)
        waiter = self._await_join(member)
        self._prepare_rebalance(group)
        return await self._outcome(waiter, JoinResult)

    async def _join_known(
        self, group: KafkaGroup, member: KafkaMember, request: _JoinRequest
    ) -> JoinResult:
        self._touch(member)
        unchanged = (
            member.protocol_type == request.protocol_type and member.protocols == request.protocols
        )
        if group.state is GroupState.COMPLETING_REBALANCE and unchanged:
            # It lost the join answer: the same generation again.
            return self._join_result(group, member)
        if group.state is GroupState.STABLE and unchanged and member.member_id != group.leader:
            return self._join_result(group, member)
        # The leader rejoining (it may assign anew) or new metadata: a rebalance.
        request.apply(member)
        waiter = self._await_join(member)
        self._prepare_rebalance(group)
        return await self._outcome(waiter, JoinResult)

    def _await_join(self, member: KafkaMember) -> asyncio.Future[_Outcome]:
        _resolve(member.join_waiter, RebalanceInProgress("a newer JoinGroup of this member"))
        member.join_waiter = asyncio.get_running_loop().create_future()
        return member.join_waiter

    @staticmethod
    async def _outcome(waiter: asyncio.Future[_Outcome], kind: type[_T]) -> _T:
        outcome = await waiter
        if isinstance(outcome, MiniMQError):
            raise outcome
        assert isinstance(outcome, kind)
        return outcome

    def _join_result(self, group: KafkaGroup, member: KafkaMember) -> JoinResult:
        members = []
        if member.member_id == group.leader:
            members = [
                JoinedMember(m.member_id, None, m.metadata_for(group.protocol_name))
                for m in group.kafka_members()
            ]
        return JoinResult(
            group.generation,
            group.kafka_protocol_type,
            group.protocol_name,
            group.leader,
            member.member_id,
            members,
        )

    # -- rebalancing -------------------------------------------------------------

    def _prepare_rebalance(self, group: KafkaGroup) -> None:
        """Start gathering members (or, when already gathering, see whether all are in)."""
        if group.state is GroupState.PREPARING_REBALANCE:
            self._maybe_complete_join(group)
            return
        if group.state is GroupState.COMPLETING_REBALANCE:
            self._fail_syncs(group, RebalanceInProgress(f"group {group.name!r} is rebalancing"))
        from_empty = group.state is GroupState.EMPTY
        group.cancel_timer()
        group.move_to(GroupState.PREPARING_REBALANCE)
        timeout = max((m.rebalance_timeout_s for m in group.kafka_members()), default=0.0)
        loop = asyncio.get_running_loop()
        delay = self.settings.initial_rebalance_delay_ms / 1000
        if from_empty and delay > 0:
            group.in_initial_delay = True
            group.new_member_added = False
            first = min(delay, timeout)
            group.timer = loop.call_later(
                first, self._initial_delay_over, group, max(timeout - first, 0.0)
            )
            return
        group.timer = loop.call_later(timeout, self._join_deadline, group)
        self._maybe_complete_join(group)

    def _current(self, group: KafkaGroup, state: GroupState) -> bool:
        return self._groups.get(group.name) is group and group.state is state

    def _initial_delay_over(self, group: KafkaGroup, remaining: float) -> None:
        if not self._current(group, GroupState.PREPARING_REBALANCE):
            return
        if group.new_member_added and remaining > 0:
            # Members are still arriving: wait once more, within the rebalance timeout.
            group.new_member_added = False
            delay = min(self.settings.initial_rebalance_delay_ms / 1000, remaining)
            group.timer = asyncio.get_running_loop().call_later(
                delay, self._initial_delay_over, group, max(remaining - delay, 0.0)
            )
            return
        group.in_initial_delay = False
        group.timer = None
        self._complete_join(group)

    def _join_deadline(self, group: KafkaGroup) -> None:
        if self._current(group, GroupState.PREPARING_REBALANCE):
            group.timer = None
            self._complete_join(group)

    def _maybe_complete_join(self, group: KafkaGroup) -> None:
        if group.in_initial_delay or group.pending:
            return
        if all(m.join_waiter is not None for m in group.kafka_members()):
            self._complete_join(group)

    def _complete_join(self, group: KafkaGroup) -> None:
        """End the gathering: a new generation of the members that rejoined."""
        group.cancel_timer()
        group.in_initial_delay = False
        for member in group.kafka_members():
            if member.join_waiter is None:
                log.info(
                    "group %s: %s did not rejoin in time; removed", group.name, member.member_id
                )
                del group.members[member.member_id]
        group.generation = next(self._generations)
        group.assignment = {}
        group.owners = {}
        if not group.members:
            group.protocol_name = group.leader = ""
            group.move_to(GroupState.EMPTY)
            log.info("group %s: empty (generation %d)", group.name, group.generation)
            self._forget_if_idle(group)
            return
        members = group.kafka_members()
        protocol = self._select_protocol(members)
        if protocol is None:
            # Cannot happen through join's checks; refuse everyone rather than guess.
            refusal = InconsistentGroupProtocol(f"group {group.name!r}: no common assignor")
            for member in members:
                _resolve(member.join_waiter, refusal)
                del group.members[member.member_id]
            group.move_to(GroupState.EMPTY)
            self._forget_if_idle(group)
            return
        group.protocol_name = protocol
        group.kafka_protocol_type = members[0].protocol_type
        if group.leader not in group.members:
            group.leader = members[0].member_id
        group.move_to(GroupState.COMPLETING_REBALANCE)
        for member in members:
            member.assignment_bytes = b""
            member.synced = False
            member.topics = self._subscribed(group, member)
            self._touch(member)
        for member in members:
            waiter, member.join_waiter = member.join_waiter, None
            _resolve(waiter, self._join_result(group, member))
        log.info(
            "group %s: generation %d, %d member(s), leader %s, assignor %s",
            group.name,
            group.generation,
            len(members),
            group.leader,
            protocol,
        )
        timeout = max(m.session_timeout_s for m in members)
        group.timer = asyncio.get_running_loop().call_later(
            timeout, self._sync_deadline, group, group.generation
        )

    @staticmethod
    def _select_protocol(members: list[KafkaMember]) -> str | None:
        """Kafka's vote: each member names its first choice among the common ones."""
        common: set[str] | None = None
        for member in members:
            names = {name for name, _ in member.protocols}
            common = names if common is None else common & names
        if not common:
            return None
        votes = Counter(
            next(name for name, _ in member.protocols if name in common) for member in members
        )
        best = max(votes.values())
        # Ties go to the first member's preference, so the choice is reproducible.
        return next(
            name for name, _ in members[0].protocols if name in common and votes[name] == best
        )

    def _subscribed(self, group: KafkaGroup, member: KafkaMember) -> set[str]:
        if group.kafka_protocol_type != _CONSUMER:
            return set()
        subscription = decode_subscription(member.metadata_for(group.protocol_name))
        return set(subscription.topics) if subscription is not None else set()

    def _sync_deadline(self, group: KafkaGroup, generation: int) -> None:
        if not self._current(group, GroupState.COMPLETING_REBALANCE):
            return
        if group.generation != generation:
            return
        group.timer = None
        for member in group.kafka_members():
            if not member.synced:
                log.info(
                    "group %s: %s did not sync generation %d in time; removed",
                    group.name,
                    member.member_id,
                    generation,
                )
                del group.members[member.member_id]
        self._prepare_rebalance(group)

    def _fail_syncs(self, group: KafkaGroup, refusal: MiniMQError) -> None:
        for member in group.kafka_members():
            waiter, member.sync_waiter = member.sync_waiter, None
            _resolve(waiter, refusal)
            member.synced = False

    def _forget_if_idle(self, group: KafkaGroup) -> None:
        """An empty group with no pending member leaves memory (its commits stay stored)."""
        if group.members or group.pending or group.state is not GroupState.EMPTY:
            return
        group.cancel_timer()
        if self._groups.get(group.name) is group:
            del self._groups[group.name]

    def membership_changed(self, group: KafkaGroup) -> None:
        """Members left or expired (or a topic they read went): rebalance as Kafka does."""
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(group)
        elif group.state is GroupState.PREPARING_REBALANCE:
            self._maybe_complete_join(group)
        else:
            self._forget_if_idle(group)

    def expire(self, group: KafkaGroup, now: float) -> None:
        """Remove members past their session timeout and pending ids past theirs."""
        gone = group.expire(now)
        lapsed = [member_id for member_id, deadline in group.pending.items() if now > deadline]
        for member_id in lapsed:
            del group.pending[member_id]
        if gone:
            log.info("group %s: session expired for %s", group.name, ", ".join(sorted(gone)))
        if gone or lapsed:
            self.membership_changed(group)

    # -- sync, heartbeat, leave --------------------------------------------------

    async def sync(
        self,
        group: str,
        member_id: str,
        generation: int,
        assignments: Sequence[tuple[str, bytes]],
        *,
        group_instance_id: str | None = None,
    ) -> SyncResult:
        """SyncGroup: this member's assignment, once the leader sent them all."""
        _check_group_id(group)
        _refuse_instance_id(group_instance_id)
        self._refuse_if_closed()
        kafka_group = self._kafka_group(group, member_id)
        member = self._member(kafka_group, member_id)
        if generation != kafka_group.generation:
            raise StaleGeneration(
                f"generation {generation} of group {group!r} is over"
                f" (now {kafka_group.generation}); join again"
            )
        self._touch(member)
        if kafka_group.state is GroupState.PREPARING_REBALANCE:
            raise RebalanceInProgress(f"group {group!r} is rebalancing; join again")
        if kafka_group.state is GroupState.STABLE:
            return self._sync_result(kafka_group, member)
        member.synced = True
        _resolve(member.sync_waiter, RebalanceInProgress("a newer SyncGroup of this member"))
        waiter = member.sync_waiter = asyncio.get_running_loop().create_future()
        if member_id == kafka_group.leader:
            self._complete_sync(kafka_group, dict(assignments))
        return await self._outcome(waiter, SyncResult)

    def _sync_result(self, group: KafkaGroup, member: KafkaMember) -> SyncResult:
        return SyncResult(member.assignment_bytes, group.kafka_protocol_type, group.protocol_name)

    def _complete_sync(self, group: KafkaGroup, assignments: dict[str, bytes]) -> None:
        group.cancel_timer()
        for member in group.kafka_members():
            member.assignment_bytes = assignments.get(member.member_id, b"")
            decoded = (
                decode_assignment(member.assignment_bytes)
                if group.kafka_protocol_type == _CONSUMER
                else None
            )
            owned = {} if decoded is None else decoded.partitions
            group.assignment[member.member_id] = {t: sorted(ps) for t, ps in owned.items()}
            member.topics |= set(owned)
            for topic, partitions in owned.items():
                for partition in partitions:
                    group.owners[(topic, partition)] = member.member_id
        group.move_to(GroupState.STABLE)
        log.info("group %s: generation %d is stable", group.name, group.generation)
        for member in group.kafka_members():
            self._touch(member)
            waiter, member.sync_waiter = member.sync_waiter, None
            _resolve(waiter, self._sync_result(group, member))

    def heartbeat(
        self,
        group: str,
        member_id: str,
        generation: int,
        *,
        group_instance_id: str | None = None,
    ) -> None:
        """Heartbeat: alive; RebalanceInProgress while the group gathers members."""
        _check_group_id(group)
        _refuse_instance_id(group_instance_id)
        kafka_group = self._kafka_group(group, member_id)
        member = self._member(kafka_group, member_id)
        if generation != kafka_group.generation:
            raise StaleGeneration(
                f"generation {generation} of group {group!r} is over"
                f" (now {kafka_group.generation}); join again"
            )
        self._touch(member)
        if kafka_group.state is GroupState.PREPARING_REBALANCE:
            raise RebalanceInProgress(f"group {group!r} is rebalancing; join again")

    def leave(self, group: str, members: Sequence[tuple[str, str | None]]) -> list[MemberLeave]:
        """LeaveGroup: remove each (member id, group instance id); one answer per member."""
        _check_group_id(group)
        found = self._live(group)
        if found is not None and not isinstance(found, KafkaGroup):
            raise _http_group(group)
        answers = []
        removed = False
        for member_id, instance_id in members:
            error: MiniMQError | None = None
            if instance_id is not None:
                error = GroupInstanceIdNotSupported("static membership is not supported")
            elif found is not None and found.pending.pop(member_id, None) is not None:
                removed = True
            elif found is None or (member := found.member(member_id)) is None:
                error = _unknown(group, member_id)
            else:
                refusal = _unknown(group, member_id)
                _resolve(member.join_waiter, refusal)
                _resolve(member.sync_waiter, refusal)
                del found.members[member_id]
                log.info("group %s: kafka member %s left", group, member_id)
                removed = True
            answers.append(MemberLeave(member_id, instance_id, error))
        if removed and found is not None:
            self.membership_changed(found)
        return answers

    # -- offsets -----------------------------------------------------------------

    async def _partition_error(self, entry: OffsetCommitEntry) -> MiniMQError | None:
        if entry.metadata is not None and len(entry.metadata) > self.settings.max_metadata_bytes:
            return OffsetMetadataTooLarge(
                f"metadata of {entry.topic}/{entry.partition} is longer than"
                f" {self.settings.max_metadata_bytes} characters"
            )
        try:
            plog = await self._reader.partition(entry.topic, entry.partition)
            end = (await plog.bounds()).end
        except MiniMQError as exc:
            return exc
        if not 0 <= entry.offset <= end:
            return OffsetOutOfRange(
                f"offset {entry.offset} of {entry.topic}/{entry.partition} is outside 0..{end}"
            )
        return None

    def _check_committer(self, group: str, member_id: str, generation: int) -> None:
        found = self._live(group)
        if found is not None and not isinstance(found, KafkaGroup):
            if found.members:
                raise _http_group(group)
            found = None
        if not member_id and generation < 0:
            if found is not None and found.members:
                raise UnknownMember(
                    f"group {group!r} has {len(found.members)} live member(s): only they"
                    " commit (a commit without member id needs an idle group)"
                )
            return
        if found is None:
            raise _unknown(group, member_id)
        member = self._member(found, member_id)
        if generation != found.generation:
            raise StaleGeneration(
                f"generation {generation} of group {group!r} is over"
                f" (now {found.generation}); join again"
            )
        if found.state is GroupState.COMPLETING_REBALANCE:
            raise RebalanceInProgress(
                f"group {group!r} waits for its leader's assignment; commit after SyncGroup"
            )
        self._touch(member)

    async def commit_offsets(
        self,
        group: str,
        member_id: str,
        generation: int,
        offsets: Sequence[OffsetCommitEntry],
        *,
        group_instance_id: str | None = None,
    ) -> list[PartitionCommit]:
        """OffsetCommit: store the valid partitions in one durable commit.

        Group-level refusals are raised (nothing stored); a partition's own
        problem (unknown, offset out of range, metadata too long) is its
        entry's error, and the other partitions are stored.
        """
        _check_group_id(group)
        _refuse_instance_id(group_instance_id)
        errors = [await self._partition_error(entry) for entry in offsets]
        valid = [entry for entry, error in zip(offsets, errors, strict=True) if error is None]
        incarnations: dict[str, str] = {}
        for entry in valid:
            incarnations[entry.topic] = (await self._reader.config(entry.topic)).topic_id or ""
        async with self._locks.hold(group):
            # Checked with the lock held: the generation may have ended while waiting.
            self._check_committer(group, member_id, generation)
            if valid:
                await self._offsets.commit(
                    group,
                    [(e.topic, e.partition, e.offset) for e in valid],
                    incarnations,
                    {(e.topic, e.partition): e.metadata or "" for e in valid},
                )
        return [
            PartitionCommit(entry.topic, entry.partition, error)
            for entry, error in zip(offsets, errors, strict=True)
        ]

    async def fetch_offsets(
        self, group: str, partitions: Sequence[tuple[str, int]] | None
    ) -> list[CommittedOffset]:
        """OffsetFetch: the committed offsets of ``partitions`` (None: every committed one)."""
        _check_group_id(group)
        committed = await self._offsets.committed(group)
        notes = await self._offsets.metadata(group)
        wanted = sorted(committed) if partitions is None else list(partitions)
        return [
            CommittedOffset(topic, p, committed.get((topic, p), -1), notes.get((topic, p), ""))
            for topic, p in wanted
        ]

    # -- describing --------------------------------------------------------------

    async def describe(self, group: str) -> KafkaGroupDescription:
        """DescribeGroups: state, protocol and members (metadata and assignment once Stable)."""
        _check_group_id(group)
        found = self._live(group)
        if found is None:
            known = group in await self._offsets.group_names()
            state = GroupState.EMPTY if known else GroupState.DEAD
            return KafkaGroupDescription(group, state.value, "", "", [])
        if not isinstance(found, KafkaGroup):
            members = [
                KafkaMemberDescription(member_id, None, "", "", b"", b"")
                for member_id in sorted(found.members)
            ]
            return KafkaGroupDescription(
                group, found.state.value, found.protocol_type, found.assignor, members
            )
        stable = found.state is GroupState.STABLE
        described = [
            KafkaMemberDescription(
                m.member_id,
                None,
                m.client_id,
                m.client_host,
                m.metadata_for(found.protocol_name) if stable else b"",
                m.assignment_bytes if stable else b"",
            )
            for m in found.kafka_members()
        ]
        return KafkaGroupDescription(
            group,
            found.state.value,
            found.kafka_protocol_type,
            found.protocol_name if stable else "",
            described,
        )

    async def list_groups(self) -> list[KafkaGroupListing]:
        """ListGroups: every group; "" as protocol type for one with commits only."""
        listing = []
        for name in await self._group_names():
            found = self._live(name)
            if found is None:
                listing.append(KafkaGroupListing(name, "", GroupState.EMPTY.value))
            elif isinstance(found, KafkaGroup):
                listing.append(
                    KafkaGroupListing(name, found.kafka_protocol_type, found.state.value)
                )
            else:
                listing.append(KafkaGroupListing(name, found.protocol_type, found.state.value))
        return listing

    # -- shutdown ----------------------------------------------------------------

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise BrokerUnavailable("the broker is shutting down")

    def close(self) -> None:
        """Shutdown: every JoinGroup and SyncGroup waiting returns BrokerUnavailable."""
        self._closed = True
        refusal = BrokerUnavailable("the broker is shutting down")
        for group in list(self._groups.values()):
            if isinstance(group, KafkaGroup):
                self.abandon(group, refusal)

    @staticmethod
    def abandon(group: KafkaGroup, refusal: MiniMQError) -> None:
        """Stop the group's timer and answer its waiting JoinGroup/SyncGroup with ``refusal``."""
        group.cancel_timer()
        for member in group.kafka_members():
            waiter, member.join_waiter = member.join_waiter, None
            _resolve(waiter, refusal)
            waiter, member.sync_waiter = member.sync_waiter, None
            _resolve(waiter, refusal)


@dataclass(frozen=True, slots=True)
class _JoinRequest:
    """What a JoinGroup says about its member (kept on the member until the next one)."""

    client_id: str
    client_host: str
    session_timeout_s: float
    rebalance_timeout_s: float
    protocol_type: str
    protocols: list[tuple[str, bytes]]

    def apply(self, member: KafkaMember) -> None:
        member.client_id = self.client_id
        member.client_host = self.client_host
        member.session_timeout_s = self.session_timeout_s
        member.rebalance_timeout_s = self.rebalance_timeout_s
        member.protocol_type = self.protocol_type
        member.protocols = self.protocols


__all__ = [
    "KAFKA_PROTOCOL",
    "CommittedOffset",
    "JoinResult",
    "JoinedMember",
    "KafkaGroup",
    "KafkaGroupDescription",
    "KafkaGroupListing",
    "KafkaGroupSettings",
    "KafkaGroups",
    "KafkaMember",
    "KafkaMemberDescription",
    "MemberLeave",
    "OffsetCommitEntry",
    "PartitionCommit",
    "SyncResult",
]
