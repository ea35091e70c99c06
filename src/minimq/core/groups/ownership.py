"""Which gateway coordinates each group, as this gateway knows it: leases claimed, renewed, lost.

Over a backend many gateways share (JetStream), each group has one coordinator, as in Kafka:
the gateway holding its lease (:class:`~minimq.core.storage_seam.GroupLeases`). Only that
gateway keeps the group's members in memory and commits for it; the transports ask
:meth:`GroupOwnership.remote_owner` first and forward (HTTP) or answer NOT_COORDINATOR (Kafka)
when another gateway owns it.

Fencing, on this side: a lease is *held* until a deadline measured on this process's monotonic
clock from the start of the call that wrote it, ``ttl - margin`` later. Other gateways may take
the lease over only ``ttl`` after that write by their wall clocks, so this gateway stops
serving (and committing for) the group a margin before anyone else can start. A renewal that
fails or comes too late loses the lease: the group's in-memory state is dropped
(``on_lost``), its members must join again, and every commit for it is refused
(:meth:`check_held`, ``MemberFenced``) until the lease is claimed again.

What remains (documented in docs/cluster.md): a commit checked just before the deadline and
delayed in flight (a stalled process, a slow backend write) by more than the margin can land
after another gateway took over; and wall clocks that disagree by more than the margin shrink it.

Before :meth:`start` (tests, in-process brokers) and over a backend only this process can open
(the disk engine), every group is this gateway's and nothing is renewed: behaviour is exactly
that of a single broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from minimq.core.storage_seam import GatewayAddress, GroupLeases
from minimq.errors import MemberFenced, MiniMQError

log = logging.getLogger("minimq.groups")

DEFAULT_LEASE_TTL_S = 10.0


class GroupOwnership:
    """The leases this gateway holds, their deadlines and their renewal."""

    def __init__(
        self,
        leases: GroupLeases,
        on_lost: Callable[[str], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._leases = leases
        self._on_lost = on_lost
        self._monotonic = monotonic
        self._me: GatewayAddress | None = None
        self._ttl_s = DEFAULT_LEASE_TTL_S
        # group -> monotonic deadline until which this gateway may serve it.
        self._held: dict[str, float] = {}

    @property
    def shared(self) -> bool:
        """True when other gateways may own groups (started over a shared backend)."""
        return self._me is not None

    @property
    def me(self) -> GatewayAddress | None:
        return self._me

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    @property
    def margin_s(self) -> float:
        """How long before its expiry a lease stops being served here."""
        return self._ttl_s / 5

    def start(self, me: GatewayAddress, ttl_s: float) -> None:
        """Take part in ownership as ``me`` (a no-op over a single-gateway backend)."""
        if self._leases.single_gateway:
            return
        if ttl_s <= 0:
            raise ValueError("the group lease TTL must be positive")
        self._me = me
        self._ttl_s = ttl_s

    def holds(self, group: str) -> bool:
        """True while this gateway may serve ``group`` (always, when not shared)."""
        if self._me is None:
            return True
        deadline = self._held.get(group)
        if deadline is None:
            return False
        if self._monotonic() < deadline:
            return True
        self._lose(group, "its lease was not renewed in time")
        return False

    def check_held(self, group: str) -> None:
        """Refuse (``MemberFenced``) what needs the lease, e.g. a commit, once it is gone."""
        if not self.holds(group):
            raise MemberFenced(
                f"this gateway no longer coordinates group {group!r} (its ownership lease"
                " moved or expired); join again"
            )

    async def remote_owner(self, group: str) -> GatewayAddress | None:
        """The gateway that owns ``group`` when it is another one; ``None`` when it is this one.

        Claims the group for this gateway when nobody holds it.
        """
        me = self._me
        if me is None or not group or self.holds(group):
            return None  # "" names no group: its requests are refused (invalid) here
        started = self._monotonic()
        owner = await self._leases.owner(group, me, self._ttl_s)
        if owner.holder_id == me.holder_id:
            self._held[group] = started + self._ttl_s - self.margin_s
            log.info("group %s: this gateway is its coordinator now", group)
            return None
        return owner

    def _lose(self, group: str, why: str) -> None:
        if self._held.pop(group, None) is not None:
            log.warning("group %s: this gateway stopped coordinating it: %s", group, why)
            self._on_lost(group)

    async def renew_all(self) -> None:
        """One round: renew every lease held; those that cannot be renewed in time are lost."""
        me = self._me
        if me is None:
            return
        for group in list(self._held):
            if not self.holds(group):
                continue  # past its deadline: lost (and its state dropped) by holds()
            started = self._monotonic()
            try:
                kept = await asyncio.wait_for(
                    self._leases.renew(group, me, self._ttl_s), timeout=self._ttl_s / 4
                )
            except (TimeoutError, MiniMQError) as exc:
                # Kept until its deadline: the next round may still renew it in time.
                log.warning("group %s: lease renewal failed (%s); retrying", group, exc)
                continue
            if not kept:
                self._lose(group, "another gateway holds its lease")
            elif group in self._held:
                self._held[group] = started + self._ttl_s - self.margin_s

    async def maintain(self) -> None:
        """Renew the held leases every quarter TTL, for ever (a background task)."""
        while True:
            await asyncio.sleep(self._ttl_s / 4)
            try:
                await self.renew_all()
            except Exception:
                # Never let the renewals stop: a lease not renewed only expires (fenced).
                log.exception("group lease renewal round failed")
            for group in list(self._held):
                self.holds(group)  # drops the state of leases whose deadline passed

    async def release_all(self) -> None:
        """Clean shutdown: give every lease up so other gateways take over at once."""
        me = self._me
        if me is None:
            return
        for group in list(self._held):
            self._held.pop(group, None)
            with contextlib.suppress(TimeoutError, MiniMQError):
                await asyncio.wait_for(self._leases.release(group, me), timeout=self._ttl_s / 4)


__all__ = ["DEFAULT_LEASE_TTL_S", "GroupOwnership"]
