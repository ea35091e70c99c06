"""Consumer-group membership and partition assignment (in memory).

A member of group G on topic T is alive while it fetches or heartbeats within
the session timeout. The live members of (G, T) share T's partitions by range
assignment over the member ids in sorted order, so every partition is owned
by exactly one member and the assignment is a pure function of the member set.

Each (G, T) also keeps an in-memory *position* per partition: the next offset
its owner will be served. A position survives only while its partition keeps
the same owner; when the owner changes, the new owner starts again from the
committed offset (at-least-once across rebalances, like Kafka).

Nothing here is persisted: after a restart members simply fetch again.
Not thread-safe: used from the event loop only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minimq.core.models import MemberInfo


def range_assignment(member_ids: list[str], partitions: int) -> dict[str, list[int]]:
    """Kafka's range assignor: contiguous blocks, the first members get one extra."""
    members = sorted(member_ids)
    assignment: dict[str, list[int]] = {member: [] for member in members}
    if not members:
        return assignment
    share, extra = divmod(partitions, len(members))
    start = 0
    for index, member in enumerate(members):
        count = share + (1 if index < extra else 0)
        assignment[member] = list(range(start, start + count))
        start += count
    return assignment


@dataclass
class TopicMembership:
    """The live members of one group on one topic, and their assignment."""

    partitions: int
    last_seen_ms: dict[str, int] = field(default_factory=dict)
    assignment: dict[str, list[int]] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)

    def owner_of(self, partition: int) -> str | None:
        for member, owned in self.assignment.items():
            if partition in owned:
                return member
        return None

    def rebalance(self, partitions: int) -> None:
        """Recompute the assignment; drop positions whose partition changed owner."""
        previous = {p: m for m, owned in self.assignment.items() for p in owned}
        self.partitions = partitions
        self.assignment = range_assignment(list(self.last_seen_ms), partitions)
        current = {p: m for m, owned in self.assignment.items() for p in owned}
        for partition in list(self.positions):
            if previous.get(partition) != current.get(partition):
                del self.positions[partition]


class Membership:
    """Every group's members per topic, with session-timeout expiry."""

    def __init__(self, session_timeout_ms: int) -> None:
        self.session_timeout_ms = session_timeout_ms
        self._groups: dict[str, dict[str, TopicMembership]] = {}

    def touch(
        self, group: str, topic: str, member_id: str, partitions: int, now_ms: int
    ) -> list[int]:
        """Record that ``member_id`` is alive; return the partitions it owns now."""
        topics = self._groups.setdefault(group, {})
        state = topics.get(topic)
        if state is None:
            state = topics[topic] = TopicMembership(partitions)
        expired = self._expire(state, now_ms)
        joined = member_id not in state.last_seen_ms
        state.last_seen_ms[member_id] = now_ms
        if joined or expired or state.partitions != partitions:
            state.rebalance(partitions)
        return list(state.assignment.get(member_id, []))

    def leave(self, group: str, topic: str, member_id: str) -> None:
        state = self._groups.get(group, {}).get(topic)
        if state is not None and state.last_seen_ms.pop(member_id, None) is not None:
            state.rebalance(state.partitions)

    def state(self, group: str, topic: str) -> TopicMembership | None:
        return self._groups.get(group, {}).get(topic)

    def reset_positions(self, group: str, topic: str, partitions: list[int] | None = None) -> None:
        """Forget in-memory positions so owners restart from the committed offsets."""
        state = self.state(group, topic)
        if state is None:
            return
        if partitions is None:
            state.positions.clear()
        else:
            for partition in partitions:
                state.positions.pop(partition, None)

    def members(self, group: str, now_ms: int) -> list[MemberInfo]:
        """The live members of ``group`` on every topic, expired ones pruned."""
        found: list[MemberInfo] = []
        for topic, state in sorted(self._groups.get(group, {}).items()):
            if self._expire(state, now_ms):
                state.rebalance(state.partitions)
            found.extend(
                MemberInfo(member, topic, list(state.assignment.get(member, [])), seen)
                for member, seen in sorted(state.last_seen_ms.items())
            )
        return found

    def group_names(self, now_ms: int) -> list[str]:
        """Groups that have at least one live member."""
        return [group for group in self._groups if self.members(group, now_ms)]

    def forget_group(self, group: str) -> bool:
        return self._groups.pop(group, None) is not None

    def forget_topic(self, topic: str) -> None:
        for topics in self._groups.values():
            topics.pop(topic, None)

    def _expire(self, state: TopicMembership, now_ms: int) -> bool:
        deadline = now_ms - self.session_timeout_ms
        stale = [member for member, seen in state.last_seen_ms.items() if seen < deadline]
        for member in stale:
            del state.last_seen_ms[member]
        return bool(stale)
