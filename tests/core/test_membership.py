from __future__ import annotations

from minimq.core.membership import Membership, range_assignment


def test_range_assignment_covers_every_partition_once() -> None:
    assignment = range_assignment(["b", "a", "c"], 7)
    assert assignment == {"a": [0, 1, 2], "b": [3, 4], "c": [5, 6]}
    assert range_assignment(["a", "b"], 1) == {"a": [0], "b": []}
    assert range_assignment([], 3) == {}


def test_members_share_partitions_and_rebalance_when_one_leaves() -> None:
    membership = Membership(session_timeout_ms=1000)
    assert membership.touch("g", "t", "m1", 4, now_ms=0) == [0, 1, 2, 3]
    assert membership.touch("g", "t", "m2", 4, now_ms=10) == [2, 3]
    assert membership.touch("g", "t", "m1", 4, now_ms=20) == [0, 1]
    membership.leave("g", "t", "m2")
    assert membership.touch("g", "t", "m1", 4, now_ms=30) == [0, 1, 2, 3]


def test_expired_member_loses_its_partitions() -> None:
    membership = Membership(session_timeout_ms=1000)
    membership.touch("g", "t", "m1", 2, now_ms=0)
    membership.touch("g", "t", "m2", 2, now_ms=0)
    assert membership.touch("g", "t", "m1", 2, now_ms=1500) == [0, 1]
    assert [m.member_id for m in membership.members("g", now_ms=1500)] == ["m1"]


def test_position_survives_only_while_the_owner_stays() -> None:
    membership = Membership(session_timeout_ms=1000)
    membership.touch("g", "t", "m1", 2, now_ms=0)
    state = membership.state("g", "t")
    assert state is not None
    state.positions.update({0: 5, 1: 7})
    membership.touch("g", "t", "m2", 2, now_ms=1)
    assert state.positions == {0: 5}
