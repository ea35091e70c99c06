"""Group consumer loop: ``poll()`` → records, commit after processing; at-least-once.

The broker keeps each member's position per owned partition and hands out
the partitions (see ``docs/http-api.md``, consumer groups).  The consumer
remembers the positions the broker reported after each poll; they are
committed by ``commit()``, and automatically at the start of a ``poll()``
once ``auto_commit_interval_ms`` passed, i.e. only for records the
application already had and (by calling ``poll`` again) finished.  A crash
therefore re-delivers at most the records since the last commit, never skips
one.  A poll whose answer is lost (timeout, dropped connection) may still
have been served, moving the broker's positions past records never seen
here; the next poll therefore commits what was already returned and rejoins
as a new member, reading again from the committed offsets.  (As in Kafka, a
commit covers the whole last poll: call ``commit()`` or ``close()`` only once
its records are processed.)  ``close()`` commits and
leaves the group so its partitions move to the other members at once rather
than after the session timeout.

The consumer joins the group when it is created (a heartbeat), so several
consumers created before the first ``poll`` split the partitions from the
start.  The broker counts every poll as a heartbeat: poll at least once per
session timeout (default 10 s) or the member's partitions are given away.

Concurrency contract: a ``Consumer`` is used by one thread at a time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Literal

from minimq.client._client import Client
from minimq.client._models import Record
from minimq.errors import BrokerUnavailable, MiniMQError


class Consumer:
    """One member of consumer group ``group`` reading ``topic``."""

    def __init__(
        self,
        client_or_url: Client | str,
        group: str,
        topic: str,
        *,
        member_id: str | None = None,
        token: str | None = None,
        auto_commit_interval_ms: int | None = 5000,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        max_poll_records: int = 500,
    ) -> None:
        self._owns_client = isinstance(client_or_url, str)
        self._client = (
            Client(client_or_url, token=token) if isinstance(client_or_url, str) else client_or_url
        )
        self.group = group
        self.topic = topic
        self._member_prefix = member_id or f"{socket.gethostname()}-{os.getpid()}"
        self.member_id = member_id or f"{self._member_prefix}-{uuid.uuid4().hex[:8]}"
        self._rejoin_needed = False
        self._auto_commit = (
            None if auto_commit_interval_ms is None else auto_commit_interval_ms / 1000
        )
        self._auto_offset_reset = auto_offset_reset
        self._max_poll_records = max_poll_records
        self._positions: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._last_commit = time.monotonic()
        self._closed = False
        self.assignment: list[int] = self._client.heartbeat(group, topic, self.member_id)

    def poll(self, timeout_ms: int = 1000, *, max_records: int | None = None) -> list[Record]:
        """Records for this member, waiting up to ``timeout_ms`` for the first one.

        At most ``max_records`` (default: the consumer's ``max_poll_records``).
        """
        if self._closed:
            raise RuntimeError("consumer is closed")
        if (
            self._auto_commit is not None
            and time.monotonic() - self._last_commit >= self._auto_commit
        ):
            self.commit()
        if self._rejoin_needed:
            self._rejoin()
        try:
            result = self._client.group_fetch(
                self.group,
                self.topic,
                member_id=self.member_id,
                limit=max_records or self._max_poll_records,
                wait_ms=timeout_ms,
                auto_offset_reset=self._auto_offset_reset,
            )
        except BrokerUnavailable:
            # The broker may have served this fetch and moved the member's positions
            # past records whose answer never arrived: rejoin before fetching again.
            self._rejoin_needed = True
            raise
        self.assignment = result.assignment
        owned = set(result.assignment)
        # A partition moved to another member is read from the group's committed
        # offset there; committing our stale position for it could move it back.
        self._positions = {p: o for p, o in self._positions.items() if p in owned}
        self._positions.update(result.positions)
        return result.records

    def _rejoin(self) -> None:
        """Continue as a new member, so reading restarts at the group's committed offsets.

        A fetch whose answer was lost may have moved the old member's positions
        past records this consumer never saw, and a late copy of it could move
        them again, so the old id is abandoned, not reused.  The records of
        earlier polls are committed first (polling again means they were
        processed); whatever follows them is delivered again.
        """
        self.commit()
        with contextlib.suppress(MiniMQError):
            self._client.leave_group(self.group, self.topic, self.member_id)
        self.member_id = f"{self._member_prefix}-{uuid.uuid4().hex[:8]}"
        self._positions = {}
        self._rejoin_needed = False

    def commit(self) -> None:
        """Durably commit the positions after every record returned by ``poll`` so far."""
        changed = [
            (self.topic, partition, offset)
            for partition, offset in sorted(self._positions.items())
            if self._committed.get(partition) != offset
        ]
        if changed:
            self._client.commit(self.group, changed, member_id=self.member_id)
            self._committed.update({p: o for _, p, o in changed})
        self._last_commit = time.monotonic()

    def seek(self, partition: int, offset: int) -> None:
        """Make the group read ``partition`` from ``offset`` next (committed at once)."""
        self._client.reset_group(
            self.group, self.topic, to="offset", offset=offset, partition=partition
        )
        self._positions[partition] = offset
        self._committed[partition] = offset

    def close(self) -> None:
        """Commit what was consumed, leave the group and release the connection."""
        if self._closed:
            return
        self._closed = True
        try:
            self.commit()
            self._client.leave_group(self.group, self.topic, self.member_id)
        finally:
            if self._owns_client:
                self._client.close()

    def __iter__(self) -> Iterator[Record]:
        """Records forever (polling as needed) until ``close()`` is called."""
        while not self._closed:
            for record in self.poll():
                if self._closed:
                    return
                yield record

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
