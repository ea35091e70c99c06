"""Partition assignors: who owns which partition of a group's topics.

An assignor is a pure function of the members' subscriptions and the topics'
partition counts, so every gateway that computes it for the same member set
gets the same answer. The two are Kafka's classic ones, with the same names
as the Kafka clients' ``partition.assignment.strategy`` values:

- ``range``: per topic, the members subscribed to it (sorted by id) take
  contiguous blocks; the first ``partitions % members`` take one more.
- ``roundrobin``: every (topic, partition), sorted, is dealt in turn to the
  next member (sorted by id) that is subscribed to its topic.

For HTTP members the broker runs the group's assignor itself (server-side
assignment); Kafka clients run theirs and send the result in SyncGroup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from typing import Final, Literal

Assignment = dict[str, dict[str, list[int]]]  # member -> topic -> partitions
AssignorName = Literal["range", "roundrobin"]
Assignor = Callable[[Mapping[str, Set[str]], Callable[[str], int]], Assignment]


def _empty(subscriptions: Mapping[str, Set[str]]) -> Assignment:
    return {member: {topic: [] for topic in topics} for member, topics in subscriptions.items()}


def range_assignment(
    subscriptions: Mapping[str, Set[str]], partitions_of: Callable[[str], int]
) -> Assignment:
    assignment = _empty(subscriptions)
    topics = sorted({topic for wanted in subscriptions.values() for topic in wanted})
    for topic in topics:
        members = sorted(m for m, wanted in subscriptions.items() if topic in wanted)
        share, extra = divmod(partitions_of(topic), len(members))
        start = 0
        for index, member in enumerate(members):
            count = share + (1 if index < extra else 0)
            assignment[member][topic] = list(range(start, start + count))
            start += count
    return assignment


def roundrobin_assignment(
    subscriptions: Mapping[str, Set[str]], partitions_of: Callable[[str], int]
) -> Assignment:
    assignment = _empty(subscriptions)
    members = sorted(subscriptions)
    if not members:
        return assignment
    turn = 0
    for topic in sorted({topic for wanted in subscriptions.values() for topic in wanted}):
        for partition in range(partitions_of(topic)):
            # The next member in turn that reads this topic (one always does).
            while topic not in subscriptions[members[turn % len(members)]]:
                turn += 1
            assignment[members[turn % len(members)]][topic].append(partition)
            turn += 1
    return assignment


ASSIGNORS: Final[dict[str, Assignor]] = {
    "range": range_assignment,
    "roundrobin": roundrobin_assignment,
}
