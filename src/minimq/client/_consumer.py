"""Group consumer loop: ``poll()`` → records, commit after processing; at-least-once.

The broker keeps each member's position per owned partition and hands out
the partitions (see ``docs/http-api.md``, consumer groups).  A member has a
*generation*: the consumer joins the group when it is created
(``POST /v1/groups/{g}/join``) and sends its member id and generation with
every fetch, commit and heartbeat.  When the group rebalances (a member
joins, leaves or expires, or offsets are reset) the broker refuses the old
generation (``MemberFenced``: ``STALE_GENERATION``, ``UNKNOWN_MEMBER``,
``NOT_PARTITION_OWNER``); the consumer then drops its positions, rejoins and
goes on.  Nothing a refused request asked for happened, so a refused commit
means the records since the last commit may be delivered again (to this
member or another), never that any is skipped.

The consumer remembers the positions the broker reported after each poll;
they are committed by ``commit()``, and automatically at the start of a
``poll()`` once ``auto_commit_interval_ms`` passed, i.e. only for records the
application already had and (by calling ``poll`` again) finished.  A crash
therefore re-delivers at most the records since the last commit, never skips
one.  A poll whose answer is lost (timeout, dropped connection) may still
have been served, moving the broker's positions past records never seen
here; the next poll therefore commits what was already returned and rejoins
as a new member, reading again from the committed offsets.  Given several
broker URLs, a poll whose broker went away while it waited does that at
once through the next broker and fetches again, so the application sees no
error, only (at worst) records since the last commit again.  (As in Kafka, a
commit covers the whole last poll: call ``commit()`` or ``close()`` only once
its records are processed.)  ``close()`` commits and leaves the group so its
partitions move to the other members at once rather than after the session
timeout.  Committed offsets never move backwards through this consumer: a
position below one it already committed (in this membership) is never sent;
only ``seek()`` moves them back.

Liveness, as in Kafka since 0.10.1: a background thread heartbeats every
``heartbeat_interval_ms``, so processing a batch may take longer than the
broker's session timeout without losing the partitions.  A heartbeat that
learns of a new generation only flags it: the next ``poll()`` rejoins, so
the application thread alone changes what the consumer owns.  What the
thread cannot vouch for is the application: once no ``poll()`` was made for
``max_poll_interval_ms`` (time spent inside ``poll`` does not count), the
member leaves the group so its partitions move to the others, and the next
``poll()`` rejoins, reading from the committed offsets.  A heartbeat that
fails (broker unreachable) is logged once per outage and retried at the
next interval; it never raises into the application.

Concurrency contract: a ``Consumer`` is used by one application thread at a
time; its heartbeat thread shares the ``Client`` (which is thread-safe).
``_lock`` guards the state both threads touch (member id, generation,
assignment, positions, poll time, rejoin flag) and is never held across a
request.  ``_membership_calls`` orders the heartbeat and leave requests of
this consumer, so a heartbeat for an abandoned member id cannot arrive after
its leave and bring it back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Literal

from minimq.client._client import Client
from minimq.client._models import GroupFetchResult, Record
from minimq.errors import BrokerUnavailable, MemberFenced, MiniMQError

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
        client_or_url: Client | str | Sequence[str],
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
        self._owns_client = isinstance(client_or_url, str | Sequence)
        self._client = (
            Client(client_or_url, token=token)
            if isinstance(client_or_url, str | Sequence)
            else client_or_url
        )
        self.group = group
        self.topic = topic
        self._member_prefix = member_id or f"{socket.gethostname()}-{os.getpid()}"
        self.member_id = member_id or f"{self._member_prefix}-{uuid.uuid4().hex[:8]}"
        self._rejoin_needed = False
        # A rejoin after a lost fetch answer takes a new member id.
        self._fresh_id_needed = False
        # Left the group after max_poll_interval_ms without a poll; the next poll rejoins.
        self._lapsed = False
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
        joined = self._client.join_group(group, topic, self.member_id)
        self.generation: int = joined.generation
        self.assignment: list[int] = joined.assignment
        # The generation the last poll's records were delivered in.
        self.last_poll_generation: int | None = None
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
            with contextlib.suppress(MemberFenced):
                # Refused: the generation is over and the rejoin below follows.
                self.commit()
        with self._lock:
            rejoin, fresh_id = self._rejoin_needed, self._fresh_id_needed
        if rejoin:
            self._rejoin(fresh_id)
        try:
            result = self._fetch_across_rebalance(timeout_ms, max_records)
        except BrokerUnavailable as exc:
            self._answer_lost()
            if len(self._client.base_urls) == 1:
                raise
            # The client moved on to another broker: rejoin there and fetch again at
            # once, so a long poll carries on through a gateway lost while it waited.
            log.warning(
                "fetch for group %r got no answer (%s); rejoining through %s",
                self.group,
                exc.message,
                self._client.base_url,
            )
            self._rejoin(fresh_id=True)
            try:
                result = self._fetch_across_rebalance(timeout_ms, max_records)
            except BrokerUnavailable:
                self._answer_lost()
                raise
        if result is None:
            return []
        with self._lock:
            self._polls += 1
            self.last_poll_generation = result.generation
            # Unless the heartbeat thread rejoined meanwhile: then these positions
            # belong to a generation that is over and must not be committed.
            if result.generation == self.generation:
                self._record_assignment(result.assignment)
                self._positions.update(result.positions)
        return result.records

    def _fetch_across_rebalance(
        self, timeout_ms: int, max_records: int | None
    ) -> GroupFetchResult | None:
        """A fetch that rejoins and fetches once more when a rebalance refused it.

        So a poll across a rebalance still returns what is there; ``None``
        when the new generation is already over too.
        """
        try:
            return self._fetch(timeout_ms, max_records)
        except MemberFenced as exc:
            log.info("group %r rebalanced (%s); rejoining", self.group, exc.code)
            self._fenced()
            self._rejoin(fresh_id=False)
            try:
                return self._fetch(timeout_ms, max_records)
            except MemberFenced:
                self._fenced()
                return None

    def _answer_lost(self) -> None:
        """A fetch got no answer; the broker may have served it and moved the member's
        positions past records never seen here: rejoin as a new member before fetching."""
        with self._lock:
            self._rejoin_needed = self._fresh_id_needed = True

    def _fetch(self, timeout_ms: int, max_records: int | None) -> GroupFetchResult:
        with self._lock:
            member, generation = self.member_id, self.generation
        return self._client.group_fetch(
            self.group,
            self.topic,
            member_id=member,
            generation=generation,
            limit=max_records or self._max_poll_records,
            wait_ms=timeout_ms,
            auto_offset_reset=self._auto_offset_reset,
        )

    def _fenced(self) -> None:
        """The broker refused this generation: drop its positions, rejoin at the next poll."""
        with self._lock:
            self._record_assignment([])
            self._rejoin_needed = True

    def _record_assignment(self, assignment: list[int]) -> None:
        """Take the broker's latest ``assignment`` for this member (caller holds ``_lock``)."""
        self.assignment = assignment
        owned = set(assignment)
        # A partition moved to another member is read from the group's committed
        # offset there; committing our stale position for it could move it back.
        self._positions = {p: o for p, o in self._positions.items() if p in owned}

    def _rejoin(self, fresh_id: bool) -> None:
        """Join again: learn the new generation and assignment, with no positions from before.

        After a lost fetch answer (``fresh_id``) the old member id is abandoned:
        that fetch may have moved the old member's positions past records this
        consumer never saw, and a late copy of it could move them again. The
        records of earlier polls are committed first (polling again means they
        were processed); whatever follows them is delivered again.
        """
        if fresh_id:
            with contextlib.suppress(MemberFenced):
                self.commit()
        with self._lock:
            abandoned = self.member_id
            if fresh_id:
                self.member_id = f"{self._member_prefix}-{uuid.uuid4().hex[:8]}"
            member = self.member_id
        with self._membership_calls:
            if fresh_id:
                with contextlib.suppress(MiniMQError):
                    self._client.leave_group(self.group, self.topic, abandoned)
            joined = self._client.join_group(self.group, self.topic, member)
            with self._lock:
                self._take_generation(joined.generation, joined.assignment)
                self._rejoin_needed = self._fresh_id_needed = self._lapsed = False

    def _take_generation(self, generation: int, assignment: list[int]) -> None:
        """Start ``generation`` with no positions from before (caller holds ``_lock``)."""
        self.generation = generation
        self._positions = {}
        # What the old membership committed says nothing about what the group holds now.
        self._committed = {}
        self._record_assignment(assignment)

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
                if self._stop_heartbeats.is_set() or self._fresh_id_needed or self._lapsed:
                    return False
                member, generation, polls = self.member_id, self.generation, self._polls
                idle_ms = (time.monotonic() - self._last_poll) * 1000
                lapsed = not self._polling and idle_ms > self._max_poll_interval_ms
                if lapsed:
                    self._record_assignment([])
                    self._rejoin_needed = self._lapsed = True
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
            try:
                beat = self._client.heartbeat(self.group, self.topic, member, generation)
            except MemberFenced:
                # A new generation: rejoin now, so the member stays alive through a
                # rebalance while the application is busy. Positions from before are
                # dropped, never committed in the new generation.
                beat = self._client.join_group(self.group, self.topic, member)
                with self._lock:
                    if member == self.member_id and generation == self.generation:
                        self._take_generation(beat.generation, beat.assignment)
                return True
            with self._lock:
                if member == self.member_id and polls == self._polls:
                    self._record_assignment(beat.assignment)
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

    def commit(self) -> dict[int, int]:
        """Durably commit the positions after every record returned by ``poll`` so far.

        Returns what was committed (partition → next offset). Raises a
        ``MemberFenced`` error when the broker refused it because the
        generation is over; the consumer then rejoins at its next ``poll`` and
        those records may be delivered again.
        """
        with self._lock:
            member, generation = self.member_id, self.generation
            changed = [
                (self.topic, partition, offset)
                for partition, offset in sorted(self._positions.items())
                # Never below what this membership committed: no backward commit.
                if offset > self._committed.get(partition, -1)
            ]
        if changed:
            try:
                self._client.commit(self.group, changed, member_id=member, generation=generation)
            except MemberFenced:
                self._fenced()
                raise
            with self._lock:
                if generation == self.generation:
                    self._committed.update({p: o for _, p, o in changed})
        self._last_commit = time.monotonic()
        return {p: o for _, p, o in changed}

    def seek(self, partition: int, offset: int) -> None:
        """Make the group read ``partition`` from ``offset`` next (committed at once)."""
        self._client.reset_group(
            self.group, self.topic, to="offset", offset=offset, partition=partition
        )
        # The reset ended the generation (fencing every member's older positions):
        # rejoin at the next poll, reading from the new offset.
        self._fenced()

    def close(self) -> None:
        """Stop heartbeating, commit what was consumed, leave the group, release the connection."""
        if self._closed:
            return
        self._closed = True
        self._stop_heartbeats.set()
        # Only a heartbeat in flight can delay this; the leave below waits for it anyway.
        self._heartbeats.join(self._client.timeout)
        try:
            with contextlib.suppress(MemberFenced):
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
