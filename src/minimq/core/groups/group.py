"""One consumer group's state machine: members, generation, assignment, positions.

States and transitions (Kafka's classic group coordinator names)::

    Empty ──join──▶ PreparingRebalance ──(http: assigned at once)──────▶ Stable
      ▲                 │       ▲    └──(kafka: everyone rejoined)──▶ CompletingRebalance
      │                 │       │                                        │
      └─last member left┘       └──join / leave / expiry / reset──── Stable ◀─leader's sync─┘
    any state ──group deleted──▶ Dead

A *generation* is one assignment. Every membership change (a join, a leave, a
session expiry, an offset reset) ends the generation: the group passes
through PreparingRebalance and the next generation number is taken. A request
that carries an older generation is fenced (``StaleGeneration``), so a member
that lost a partition can neither be served nor commit for it. For the
``http`` protocol the broker assigns partitions itself, so PreparingRebalance
leads straight to Stable and ownership moves in the same event-loop step that
fenced the previous generation. The ``kafka`` protocol (JoinGroup, SyncGroup,
client-side assignment; :mod:`minimq.core.groups.kafka_protocol`) uses
CompletingRebalance between the two, and, as Kafka does, takes the next
generation number only when the members have rejoined: until then the old
generation's members may still commit.

Each group also keeps an in-memory *position* per owned (topic, partition):
the next offset its owner will be served. A position lives only while its
partition keeps the same owner; a new owner starts from the committed offset,
so records that were handed out but not committed go out again (at-least-once
across generations) and committed ones never do.

Not thread-safe: the coordinator uses it from the event loop only.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from minimq.core.groups.assignors import ASSIGNORS, Assignment
from minimq.errors import RebalanceInProgress, StaleGeneration, UnknownMember

TopicPartition = tuple[str, int]


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


ALLOWED_TRANSITIONS: Final[dict[GroupState, frozenset[GroupState]]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE, GroupState.DEAD}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY, GroupState.DEAD}
    ),
    GroupState.COMPLETING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.PREPARING_REBALANCE, GroupState.EMPTY, GroupState.DEAD}
    ),
    GroupState.STABLE: frozenset({GroupState.PREPARING_REBALANCE, GroupState.DEAD}),
    GroupState.DEAD: frozenset(),
}


@dataclass
class Member:
    """A live member: what it reads, and when it was last heard from (monotonic seconds)."""

    member_id: str
    topics: set[str]
    session_timeout_s: float
    last_seen: float
    last_seen_wall_ms: int
    # Requests being served for it (a long-poll can outlast the session timeout):
    # a member with one in flight is alive.
    in_flight: int = 0

    def expired(self, now: float) -> bool:
        return self.in_flight == 0 and now - self.last_seen > self.session_timeout_s


@dataclass
class Group:
    """See the module docstring for the states and what a generation means."""

    name: str
    protocol_type: str
    assignor: str = "range"
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    assignment: Assignment = field(default_factory=dict)
    owners: dict[TopicPartition, str] = field(default_factory=dict)
    positions: dict[TopicPartition, int] = field(default_factory=dict)

    def move_to(self, state: GroupState) -> None:
        """Change state; a move :data:`ALLOWED_TRANSITIONS` does not list is a bug."""
        if state not in ALLOWED_TRANSITIONS[self.state]:
            raise AssertionError(f"group {self.name!r}: {self.state.value} -> {state.value}")
        self.state = state

    def rebalance(self, generation: int, partitions_of: Callable[[str], int]) -> None:
        """End the current generation and start ``generation`` with a new assignment.

        Positions of partitions whose owner changed are dropped, so their new
        owner starts from the committed offset.
        """
        self.move_to(GroupState.PREPARING_REBALANCE)
        self.generation = generation
        subscriptions = {member_id: m.topics for member_id, m in self.members.items()}
        self.assignment = ASSIGNORS[self.assignor](subscriptions, partitions_of)
        owners = {
            (topic, partition): member_id
            for member_id, topics in self.assignment.items()
            for topic, partitions in topics.items()
            for partition in partitions
        }
        for key in [k for k in self.positions if self.owners.get(k) != owners.get(k)]:
            del self.positions[key]
        self.owners = owners
        self.move_to(GroupState.STABLE if self.members else GroupState.EMPTY)

    def expire(self, now: float) -> list[str]:
        """Remove members past their session timeout; return their ids."""
        gone = [member_id for member_id, m in self.members.items() if m.expired(now)]
        for member_id in gone:
            del self.members[member_id]
        return gone

    def check(self, member_id: str, generation: int | None) -> Member:
        """The live member ``member_id``, if ``generation`` (when given) is the current one."""
        member = self.members.get(member_id)
        if member is None:
            raise UnknownMember(f"{member_id!r} is not a member of group {self.name!r}; join again")
        if self.state in (GroupState.PREPARING_REBALANCE, GroupState.COMPLETING_REBALANCE):
            raise RebalanceInProgress(f"group {self.name!r} is rebalancing; join again")
        if generation is not None and generation != self.generation:
            raise StaleGeneration(
                f"generation {generation} of group {self.name!r} is over"
                f" (now {self.generation}); join again"
            )
        return member

    def owned(self, member_id: str, topic: str) -> list[int]:
        return list(self.assignment.get(member_id, {}).get(topic, []))

    def kill(self) -> None:
        self.move_to(GroupState.DEAD)
