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

Liveness, as in Kafka since 0.10.1: the consumer joins the group when it is
created (a heartbeat), so several consumers created before the first
``poll`` split the partitions from the start.  A background thread then
heartbeats every ``heartbeat_interval_ms``, so processing a batch may take
longer than the broker's session timeout without losing the partitions.
What the thread cannot vouch for is the application: once no ``poll()`` was
made for ``max_poll_interval_ms`` (time spent inside ``poll`` does not
count), the member leaves the group so its partitions move to the others,
and the next ``poll()`` rejoins as a new member, reading from the committed
offsets.  A heartbeat that fails (broker unreachable) is logged once per
outage and retried at the next interval; it never raises into the
application.

Positions are only ever committed for partitions the member still owns: when
a heartbeat or poll answer shows a partition moved to another member (or the
member left), its position is dropped, since the new owner reads from the
committed offset and committing the stale position could move it back.

Concurrency contract: a ``Consumer`` is used by one application thread at a
time; its heartbeat thread shares the ``Client`` (which is thread-safe).
``_lock`` guards the state both threads touch (member id, assignment,
positions, poll time, rejoin flag) and is never held across a request.
``_membership_calls`` orders the heartbeat and leave requests of this
consumer, so a heartbeat for an abandoned member id cannot arrive after its
leave and bring it back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Literal

from minimq.client._client import Client
from minimq.client._models import Record
from minimq.errors import BrokerUnavailable, MiniMQError

log = logging.getLogger("minimq.client.consumer")

# The broker's default --session-timeout-ms (the client cannot import the broker's settings).
_BROKER_DEFAULT_SESSION_TIMEOUT_MS = 10_000


class Consumer:
    """One member of consumer group ``group`` reading ``topic``.

    ``heartbeat_interval_ms`` is how often the background thread tells the
    broker the member is alive; keep it well below the broker's session
    timeout (the default is a third of the broker's default 10 s).
    ``max_poll_interval_ms`` is the longest the application may go between
    two ``poll()`` calls before the member leaves the group and its
    partitions move to the other members.
    """

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
        heartbeat_interval_ms: int = _BROKER_DEFAULT_SESSION_TIMEOUT_MS // 3,
        max_poll_interval_ms: int = 300_000,
    ) -> None:
        if heartbeat_interval_ms <= 0 or max_poll_interval_ms <= 0:
            raise ValueError("heartbeat_interval_ms and max_poll_interval_ms must be positive")
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
        self._lock = threading.Lock()
        self._membership_calls = threading.Lock()
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._max_poll_interval_ms = max_poll_interval_ms
        self._polling = False
        self._last_poll = time.monotonic()
        # Counts recorded poll answers: a heartbeat answer older than the last one is stale.
        self._polls = 0
        self._heartbeat_failing = False
        self._stop_heartbeats = threading.Event()
        self.assignment: list[int] = self._client.heartbeat(group, topic, self.member_id)
        self._heartbeats = threading.Thread(
            target=self._heartbeat_loop, name="minimq-consumer-heartbeat", daemon=True
        )
        self._heartbeats.start()

    def poll(self, timeout_ms: int = 1000, *, max_records: int | None = None) -> list[Record]:
        """Records for this member, waiting up to ``timeout_ms`` for the first one.

        At most ``max_records`` (default: the consumer's ``max_poll_records``).
        """
        if self._closed:
            raise RuntimeError("consumer is closed")
        with self._lock:
            self._polling = True
        try:
            return self._poll(timeout_ms, max_records)
        finally:
            with self._lock:
                self._polling = False
                self._last_poll = time.monotonic()

    def _poll(self, timeout_ms: int, max_records: int | None) -> list[Record]:
        if (
            self._auto_commit is not None
            and time.monotonic() - self._last_commit >= self._auto_commit
        ):
            self.commit()
        with self._lock:
            rejoin = self._rejoin_needed
        if rejoin:
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
            with self._lock:
                self._rejoin_needed = True
            raise
        with self._lock:
            self._polls += 1
            self._record_assignment(result.assignment)
            self._positions.update(result.positions)
        return result.records

    def _record_assignment(self, assignment: list[int]) -> None:
        """Take the broker's latest ``assignment`` for this member (caller holds ``_lock``)."""
        self.assignment = assignment
        owned = set(assignment)
        # A partition moved to another member is read from the group's committed
        # offset there; committing our stale position for it could move it back.
        self._positions = {p: o for p, o in self._positions.items() if p in owned}

    def _rejoin(self) -> None:
        """Continue as a new member, so reading restarts at the group's committed offsets.

        A fetch whose answer was lost may have moved the old member's positions
        past records this consumer never saw, and a late copy of it could move
        them again, so the old id is abandoned, not reused.  The records of
        earlier polls are committed first (polling again means they were
        processed); whatever follows them is delivered again.  After a lapse
        (no poll for ``max_poll_interval_ms``) there is nothing to commit: the
        member already left and dropped its positions.
        """
        self.commit()
        with self._lock:
            abandoned = self.member_id
            self.member_id = f"{self._member_prefix}-{uuid.uuid4().hex[:8]}"
            self._positions = {}
            self._rejoin_needed = False
        # What the old member committed says nothing about what the group holds now.
        self._committed = {}
        with self._membership_calls, contextlib.suppress(MiniMQError):
            self._client.leave_group(self.group, self.topic, abandoned)

    def _heartbeat_loop(self) -> None:
        while not self._stop_heartbeats.wait(self._heartbeat_interval_ms / 1000):
            try:
                sent = self._heartbeat()
            except Exception as exc:
                # The thread must outlive any failure, or the member would silently lapse.
                self._heartbeat_failed(exc)
            else:
                if sent and self._heartbeat_failing:
                    self._heartbeat_failing = False
                    log.warning("heartbeats to group %r succeed again", self.group)

    def _heartbeat(self) -> bool:
        """Keep the member alive, or make it leave once the application stopped polling.

        Returns whether a request was made (and answered).
        """
        with self._membership_calls:
            with self._lock:
                if self._stop_heartbeats.is_set() or self._rejoin_needed:
                    return False
                member, polls = self.member_id, self._polls
                idle_ms = (time.monotonic() - self._last_poll) * 1000
                lapsed = not self._polling and idle_ms > self._max_poll_interval_ms
                if lapsed:
                    self._record_assignment([])
                    self._rejoin_needed = True
            if lapsed:
                log.warning(
                    "no poll() for %d ms (max_poll_interval_ms %d): member %s leaves group %r;"
                    " the next poll() rejoins",
                    idle_ms,
                    self._max_poll_interval_ms,
                    member,
                    self.group,
                )
                self._client.leave_group(self.group, self.topic, member)
                return True
            assignment = self._client.heartbeat(self.group, self.topic, member)
            with self._lock:
                if member == self.member_id and polls == self._polls:
                    self._record_assignment(assignment)
            return True

    def _heartbeat_failed(self, exc: Exception) -> None:
        """Log a failed heartbeat: a warning once per outage, then at debug level."""
        if self._heartbeat_failing:
            log.debug("heartbeat to group %r failed again: %s", self.group, exc)
            return
        self._heartbeat_failing = True
        log.warning(
            "heartbeat to group %r failed (%s); retrying every %d ms",
            self.group,
            exc,
            self._heartbeat_interval_ms,
            exc_info=not isinstance(exc, MiniMQError),
        )

    def commit(self) -> None:
        """Durably commit the positions after every record returned by ``poll`` so far."""
        with self._lock:
            member = self.member_id
            changed = [
                (self.topic, partition, offset)
                for partition, offset in sorted(self._positions.items())
                if self._committed.get(partition) != offset
            ]
        if changed:
            self._client.commit(self.group, changed, member_id=member)
            self._committed.update({p: o for _, p, o in changed})
        self._last_commit = time.monotonic()

    def seek(self, partition: int, offset: int) -> None:
        """Make the group read ``partition`` from ``offset`` next (committed at once)."""
        self._client.reset_group(
            self.group, self.topic, to="offset", offset=offset, partition=partition
        )
        with self._lock:
            self._positions[partition] = offset
        self._committed[partition] = offset

    def close(self) -> None:
        """Stop heartbeating, commit what was consumed, leave the group, release the connection."""
        if self._closed:
            return
        self._closed = True
        self._stop_heartbeats.set()
        # Only a heartbeat in flight can delay this; the leave below waits for it anyway.
        self._heartbeats.join(self._client.timeout)
        try:
            self.commit()
            with self._membership_calls:
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
