"""The offsets store as a group coordinator must use it: writes only under the group's lease.

Over a backend many gateways share, a commit (or a group's deletion) by a gateway that no
longer holds the group's ownership lease could overwrite what the new owner committed. Every
write goes through :meth:`GroupOwnership.check_held` first, which refuses it with
``MemberFenced`` once the lease is lost or about to expire; reads pass straight through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from minimq.core.groups.ownership import GroupOwnership
from minimq.core.storage_seam import OffsetStore


class FencedOffsetStore:
    """An ``OffsetStore`` whose group writes are refused without the group's lease."""

    def __init__(self, offsets: OffsetStore, ownership: GroupOwnership) -> None:
        self._offsets = offsets
        self._ownership = ownership

    async def commit(
        self,
        group: str,
        offsets: Iterable[tuple[str, int, int]],
        topic_ids: Mapping[str, str] | None = None,
        metadata: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        self._ownership.check_held(group)
        await self._offsets.commit(group, offsets, topic_ids, metadata)

    async def committed(self, group: str) -> dict[tuple[str, int], int]:
        return await self._offsets.committed(group)

    async def metadata(self, group: str) -> dict[tuple[str, int], str]:
        return await self._offsets.metadata(group)

    async def group_names(self) -> list[str]:
        return await self._offsets.group_names()

    async def delete_group(self, group: str) -> None:
        self._ownership.check_held(group)
        await self._offsets.delete_group(group)

    async def delete_topic(self, topic: str) -> None:
        await self._offsets.delete_topic(topic)

    async def close(self) -> None:
        await self._offsets.close()


__all__ = ["FencedOffsetStore"]
