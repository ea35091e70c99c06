"""Group ownership leases in a replicated KV bucket: which gateway coordinates each group.

One key per group (the escaped group name) in the bucket ``<namespace>-groupowners``; the value,
JSON::

    {"http_url": "...", "kafka_host": "...", "kafka_port": 9092, "holder_id": "<process id>",
     "expires_at_ms": 1764662400000}

Every write names the revision it replaces (``LeaderBucket.put``), and every read goes to the
bucket's stream leader, so two gateways racing for one group never both win, and a claimer
never acts on a follower's stale view (reference, "Consistency traps"):

- a claim creates the key (revision 0), or replaces an expired lease at the revision read;
- a renewal replaces the holder's own lease at the revision read;
- a release (clean shutdown) replaces it with one that expired already, so the next claim
  succeeds at once instead of after the TTL.

Expiry is judged by wall clocks: the holder writes ``expires_at_ms`` from its clock, a claimer
compares with its own.  Clocks that disagree by more than the holder's safety margin (see
``minimq.core.groups.ownership``) shorten the margin by that much; NTP-synchronised hosts are
assumed.  Per-message TTLs are not used: nats-py's get ignores their expiry markers (reference,
"More traps seen"), and a lease must be judged by the value itself anyway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from minimq.core.storage_seam import GatewayAddress
from minimq.errors import StorageError
from minimq.jetstream.buckets import Entry, LeaderBucket, RevisionConflict
from minimq.jetstream.names import escape

# A claim, renewal or release re-reads after each lost race; with a handful of gateways a few
# rounds settle it, so this bound is only there to end a loop that something else broke.
_MAX_ROUNDS: Final = 100


def group_owners_bucket(namespace: str) -> str:
    """The bucket holding the namespace's group leases."""
    return f"{namespace}-groupowners"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class _Lease:
    owner: GatewayAddress
    expires_at_ms: int


def _encode(owner: GatewayAddress, expires_at_ms: int) -> bytes:
    return json.dumps(
        {
            "http_url": owner.http_url,
            "kafka_host": owner.kafka_host,
            "kafka_port": owner.kafka_port,
            "holder_id": owner.holder_id,
            "expires_at_ms": expires_at_ms,
        }
    ).encode()


def _decode(entry: Entry | None) -> _Lease | None:
    """The lease ``entry`` holds; ``None`` for none, or for one this code cannot read (expired)."""
    if entry is None:
        return None
    try:
        value = json.loads(entry.value)
        owner = GatewayAddress(
            str(value["http_url"]),
            str(value["kafka_host"]),
            int(value["kafka_port"]),
            str(value["holder_id"]),
        )
        return _Lease(owner, int(value["expires_at_ms"]))
    except (ValueError, KeyError, TypeError):
        return None


class JetStreamGroupLeases:
    """The GroupLeases of the JetStream backend; safe from many gateways at once."""

    def __init__(self, bucket: LeaderBucket, wall_ms: Callable[[], int] = _wall_ms) -> None:
        self._bucket = bucket
        self._wall_ms = wall_ms

    @property
    def single_gateway(self) -> bool:
        return False

    async def owner(self, group: str, holder: GatewayAddress, ttl_s: float) -> GatewayAddress:
        key = escape(group)
        ttl_ms = int(ttl_s * 1000)
        for _ in range(_MAX_ROUNDS):
            # Taken before the read: the lease written below never outlives what the holder
            # (which measured its deadline from before this call) believes.
            now_ms = self._wall_ms()
            entry = await self._bucket.get(key)
            lease = _decode(entry)
            if (
                lease is not None
                and lease.owner.holder_id != holder.holder_id
                and lease.expires_at_ms > now_ms
            ):
                return lease.owner
            try:
                await self._bucket.put(
                    key, _encode(holder, now_ms + ttl_ms), entry.revision if entry else 0
                )
            except RevisionConflict:
                continue  # another gateway claimed or renewed meanwhile: look again
            return holder
        raise StorageError(f"the lease of group {group!r} kept changing; try again")

    async def renew(self, group: str, holder: GatewayAddress, ttl_s: float) -> bool:
        key = escape(group)
        ttl_ms = int(ttl_s * 1000)
        for _ in range(_MAX_ROUNDS):
            now_ms = self._wall_ms()
            entry = await self._bucket.get(key)
            lease = _decode(entry)
            if entry is None or lease is None or lease.owner.holder_id != holder.holder_id:
                return False
            try:
                await self._bucket.put(key, _encode(holder, now_ms + ttl_ms), entry.revision)
            except RevisionConflict:
                # Our own earlier write whose answer was lost, or a takeover: read again.
                continue
            return True
        raise StorageError(f"the lease of group {group!r} kept changing; try again")

    async def release(self, group: str, holder: GatewayAddress) -> None:
        key = escape(group)
        for _ in range(_MAX_ROUNDS):
            entry = await self._bucket.get(key)
            lease = _decode(entry)
            if entry is None or lease is None or lease.owner.holder_id != holder.holder_id:
                return
            try:
                await self._bucket.put(key, _encode(holder, 0), entry.revision)
            except RevisionConflict:
                continue
            return


__all__ = ["JetStreamGroupLeases", "group_owners_bucket"]
