"""A replicated key-value bucket with leader reads and revision-checked writes.

It is a JetStream KV bucket (stream ``KV_<bucket>``, subjects ``$KV.<bucket>.<key>``, one message
kept per key), so the ``nats kv`` tools can inspect it, but read and written here on purpose
rather than through nats-py's KV class:

- reads go to the stream **leader** (``STREAM.MSG.GET`` ``last_by_subj``; the bucket has
  ``allow_direct: false``), because a direct get served by a follower returned the previous
  value in 9 of 300 reads right after an update (reference, "Consistency traps");
- a write names the revision it replaces (``Nats-Expected-Last-Subject-Sequence``; 0 means
  "create, refuse if it exists"), so concurrent gateways never lose each other's updates;
- a deleted key is *purged* (no delete marker left behind), so :meth:`LeaderBucket.keys`, which
  lists the subjects the leader's stream state holds, lists live keys only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from minimq.errors import StorageError
from minimq.jetstream.connection import (
    ERR_STREAM_NAME_IN_USE,
    ERR_WRONG_LAST_SEQUENCE,
    ApiError,
    JetStreamConnection,
    is_transient,
    retry_failover,
)
from minimq.jetstream.direct_get import DirectReader

EXPECTED_LAST_SUBJECT_SEQUENCE: Final = "Nats-Expected-Last-Subject-Sequence"


class RevisionConflict(Exception):
    """The key changed (or was created) since the revision a write named."""


@dataclass(frozen=True, slots=True)
class Entry:
    value: bytes
    revision: int


class LeaderBucket:
    """One bucket; keys are KV-safe tokens (callers escape names, see ``names``)."""

    def __init__(self, connection: JetStreamConnection, reader: DirectReader, bucket: str) -> None:
        self._connection = connection
        self._reader = reader
        self.bucket = bucket
        self.stream = f"KV_{bucket}"

    def _subject(self, key: str) -> str:
        return f"$KV.{self.bucket}.{key}"

    async def ensure(self, replicas: int) -> None:
        """Create the bucket's stream if missing (an existing one is kept as it is)."""
        config = {
            "name": self.stream,
            "subjects": [f"$KV.{self.bucket}.>"],
            "num_replicas": replicas,
            "storage": "file",
            "retention": "limits",
            "discard": "new",
            "max_msgs_per_subject": 1,
            "allow_direct": False,
            "allow_rollup_hdrs": True,
            "deny_delete": True,
            "duplicate_window": 120_000_000_000,
        }

        async def create() -> None:
            try:
                await self._connection.api(f"STREAM.CREATE.{self.stream}", config)
            except ApiError as exc:
                if exc.err_code == ERR_STREAM_NAME_IN_USE:
                    return  # another gateway (or an earlier start) made it
                if is_transient(exc):
                    raise
                raise StorageError(
                    f"JetStream refused the KV bucket {self.bucket}: {exc.description} "
                    f"(err_code {exc.err_code})"
                ) from None

        await retry_failover(create, f"creating the KV bucket {self.bucket}")

    async def get(self, key: str) -> Entry | None:
        """The key's current value and revision as the leader has it; ``None`` if absent."""

        async def read() -> Entry | None:
            message = await self._reader.leader_get(
                self.stream, last_for_subject=self._subject(key)
            )
            return None if message is None else Entry(message.payload, message.sequence)

        return await retry_failover(read, f"reading {self.bucket}/{key}")

    async def put(self, key: str, value: bytes, revision: int) -> int:
        """Write ``value`` if the key is still at ``revision`` (0: absent); the new revision.

        ``RevisionConflict`` otherwise.  A write whose answer was lost is retried; if it had
        landed, the retry sees a conflict, which the caller resolves by reading again (every
        caller here re-reads and recomputes, so a repeat is harmless).
        """

        async def write() -> int:
            try:
                ack = await self._connection.publish_acked(
                    self._subject(key), value, {EXPECTED_LAST_SUBJECT_SEQUENCE: str(revision)}
                )
            except ApiError as exc:
                if exc.err_code == ERR_WRONG_LAST_SEQUENCE:
                    raise RevisionConflict(
                        f"{self.bucket}/{key} is no longer at {revision}"
                    ) from None
                raise
            return int(ack["seq"])

        return await retry_failover(write, f"writing {self.bucket}/{key}")

    async def purge(self, key: str) -> None:
        """Remove the key entirely (no delete marker)."""
        await retry_failover(
            lambda: self._connection.api(
                f"STREAM.PURGE.{self.stream}", {"filter": self._subject(key)}
            ),
            f"deleting {self.bucket}/{key}",
        )

    async def keys(self) -> list[str]:
        """Every key the leader stores, from its stream state (not a follower's consumer)."""
        prefix = f"$KV.{self.bucket}."
        keys: list[str] = []
        offset = 0
        while True:
            page_offset = offset

            async def page(start: int = page_offset) -> dict[str, object]:
                return await self._connection.api(
                    f"STREAM.INFO.{self.stream}",
                    {"subjects_filter": f"{prefix}>", "offset": start},
                )

            answer = await retry_failover(page, f"listing {self.bucket}")
            state = answer.get("state") or {}
            subjects = state.get("subjects") if isinstance(state, dict) else None
            found = list((subjects or {}).keys())
            keys.extend(subject.removeprefix(prefix) for subject in found)
            total = int(str(answer.get("total") or 0))
            offset += len(found)
            if not found or offset >= total:
                return keys
