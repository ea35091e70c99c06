from __future__ import annotations

import asyncio

from minimq.core.keyed_locks import KeyedLocks


async def test_same_key_is_serialized_other_keys_are_not() -> None:
    locks = KeyedLocks()
    events: list[str] = []

    async def user(key: str, name: str) -> None:
        async with locks.hold(key):
            events.append(f"{name} in")
            await asyncio.sleep(0.01)
            events.append(f"{name} out")

    await asyncio.gather(user("a", "1"), user("a", "2"), user("b", "3"))
    assert events.index("1 out") < events.index("2 in")
    assert events.index("3 in") < events.index("1 out")
    assert len(locks) == 0
