"""Group ownership leases in KV, from several gateways: one winner, expiry, takeover, fencing.

``storage`` and ``second_gateway`` (tests/jetstream/conftest.py) open one namespace through two
connections, so the two ends are two gateways as far as the backend can tell.
"""

from __future__ import annotations

import asyncio

import pytest

from minimq.core.groups.fenced_offsets import FencedOffsetStore
from minimq.core.groups.ownership import GroupOwnership
from minimq.core.storage_seam import GatewayAddress
from minimq.core.topic_config import TopicConfig
from minimq.errors import MemberFenced
from minimq.jetstream import JetStreamStorage

A = GatewayAddress("http://127.0.0.1:1", "127.0.0.1", 9001, "holder-a")
B = GatewayAddress("http://127.0.0.1:2", "127.0.0.1", 9002, "holder-b")


async def test_two_claimers_racing_exactly_one_wins(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    for round_ in range(20):
        group = f"race-{round_}"
        seen_by_a, seen_by_b = await asyncio.gather(
            storage.group_leases.owner(group, A, 30.0),
            second_gateway.group_leases.owner(group, B, 30.0),
        )
        assert seen_by_a == seen_by_b, (round_, seen_by_a, seen_by_b)
        assert seen_by_a in (A, B)
        # The loser keeps seeing the winner; the winner renews, the loser cannot.
        loser, winner = (B, A) if seen_by_a == A else (A, B)
        assert await storage.group_leases.owner(group, loser, 30.0) == winner
        assert await second_gateway.group_leases.renew(group, loser, 30.0) is False
        assert await storage.group_leases.renew(group, winner, 30.0) is True


async def test_an_expired_lease_is_taken_over_and_its_holder_cannot_renew(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    assert await storage.group_leases.owner("g", A, 1.0) == A
    assert await second_gateway.group_leases.owner("g", B, 1.0) == A
    await asyncio.sleep(1.5)
    assert await second_gateway.group_leases.owner("g", B, 30.0) == B
    assert await storage.group_leases.renew("g", A, 30.0) is False
    assert await storage.group_leases.owner("g", A, 30.0) == B


async def test_a_released_lease_is_claimed_at_once(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    assert await storage.group_leases.owner("g", A, 60.0) == A
    await second_gateway.group_leases.release("g", B)  # not B's: changes nothing
    assert await second_gateway.group_leases.owner("g", B, 60.0) == A
    await storage.group_leases.release("g", A)
    assert await second_gateway.group_leases.owner("g", B, 60.0) == B


async def test_a_lost_lease_fences_commits_and_drops_the_group(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    await storage.logs.create_topic("t", TopicConfig(partitions=1))
    lost: list[str] = []
    ownership = GroupOwnership(storage.group_leases, lost.append)
    ownership.start(A, 1.0)
    offsets = FencedOffsetStore(storage.offsets, ownership)
    assert await ownership.remote_owner("g") is None  # claimed: this gateway serves it
    await offsets.commit("g", [("t", 0, 0)])
    # No renewal runs: the lease lapses here (a margin before others may take it) ...
    await asyncio.sleep(1.0)
    assert not ownership.holds("g")
    assert lost == ["g"]
    with pytest.raises(MemberFenced):
        await offsets.commit("g", [("t", 0, 0)])
    # ... and another gateway takes it over once it expired.
    await asyncio.sleep(0.5)
    assert await second_gateway.group_leases.owner("g", B, 30.0) == B
    assert await ownership.remote_owner("g") == B
    with pytest.raises(MemberFenced):
        await offsets.commit("g", [("t", 0, 0)])
    assert await storage.offsets.committed("g") == {("t", 0): 0}


async def test_renewal_keeps_the_lease_and_a_takeover_is_noticed(
    storage: JetStreamStorage, second_gateway: JetStreamStorage
) -> None:
    lost: list[str] = []
    ownership = GroupOwnership(storage.group_leases, lost.append)
    ownership.start(A, 4.0)
    assert await ownership.remote_owner("g") is None
    for _ in range(6):  # 6 s (past the TTL) of renewals every quarter TTL: never lost
        await asyncio.sleep(1.0)
        await ownership.renew_all()
        assert ownership.holds("g")
    assert await second_gateway.group_leases.owner("g", B, 30.0) == A
    assert lost == []
    # A release by the holder, then B claims: A's next renewal finds it gone.
    await storage.group_leases.release("g", A)
    assert await second_gateway.group_leases.owner("g", B, 30.0) == B
    await ownership.renew_all()
    assert not ownership.holds("g") and lost == ["g"]
