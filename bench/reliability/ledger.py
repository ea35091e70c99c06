"""What clients were told, and the checker that judges a log against it.

Every test message carries a unique id.  Clients record each request's outcome
in a :class:`Ledger`:

* *acknowledged*: the broker answered success with a (partition, offset);
* *refused*: the broker answered an error, so the message must not be stored;
* *unknown*: the request was sent but no answer came (connection reset,
  timeout, broker killed): the message may or may not be stored, possibly
  more than once when the client retried it.

:func:`check_log` reads what is stored (every partition from its first offset)
and reports every violation of:

1. offsets of each partition are contiguous from its start offset;
2. every acknowledged id is stored at exactly the acknowledged offset (so no
   acknowledged message is missing and no offset holds two values);
3. an id is stored more than once only if some attempt's outcome was unknown;
4. an id is stored only if some attempt was acknowledged or unknown;
5. nothing stored is an id no client ever sent.

Committed group offsets are judged by :meth:`Ledger.check_commits`: after a
crash the committed offset must be the last acknowledged commit's, or that of
a commit sent later whose outcome was unknown — never behind.

Concurrency: every method takes the ledger's lock, so producer and consumer
threads can share one ledger.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

TopicPartition = tuple[str, int]
StoredRecord = tuple[int, str | None]  # (offset, message id or None when not one of ours)


@dataclass
class Verdict:
    """The checker's findings; ``ok`` when there are none."""

    records: int = 0
    acknowledged: int = 0
    unknown_outcome: int = 0
    duplicates_explained: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = (
            f"{self.records} records stored, {self.acknowledged} acknowledged, "
            f"{self.unknown_outcome} with unknown outcome, "
            f"{self.duplicates_explained} duplicates from unknown-outcome retries"
        )
        if self.ok:
            return f"OK: {head}"
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        return f"FAILED ({len(self.problems)} problems): {head}\n  {shown}{more}"


@dataclass
class _CommitHistory:
    acknowledged: int | None = None
    unknown_since: list[int] = field(default_factory=list)


class Ledger:
    """Outcomes of every produce and commit request (thread-safe; see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: set[str] = set()
        self._acknowledged: dict[str, tuple[int, int]] = {}
        self._unknown: set[str] = set()
        self._commits: dict[tuple[str, str, int], _CommitHistory] = {}

    # ----------------------------------------------------------------- produce

    def sent(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._sent.update(ids)

    def acknowledged(self, ids: Sequence[str], positions: Sequence[tuple[int, int]]) -> None:
        if len(ids) != len(positions):
            raise ValueError("one (partition, offset) per acknowledged id")
        with self._lock:
            for message_id, position in zip(ids, positions, strict=True):
                previous = self._acknowledged.setdefault(message_id, position)
                if previous != position:
                    # Acknowledged twice at different places: only legal after a retry
                    # of an unknown outcome, and then both copies must be stored.
                    self._unknown.add(message_id)

    def unknown(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._unknown.update(ids)

    @property
    def acknowledged_count(self) -> int:
        with self._lock:
            return len(self._acknowledged)

    def acknowledged_ids(self) -> set[str]:
        with self._lock:
            return set(self._acknowledged)

    # ----------------------------------------------------------------- commits

    def commit_acknowledged(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            for (topic, partition), offset in offsets.items():
                history = self._commits.setdefault((group, topic, partition), _CommitHistory())
                history.acknowledged = offset
                history.unknown_since.clear()

    def commit_unknown(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            for (topic, partition), offset in offsets.items():
                history = self._commits.setdefault((group, topic, partition), _CommitHistory())
                history.unknown_since.append(offset)

    def check_commits(self, group: str, committed: Mapping[TopicPartition, int]) -> list[str]:
        """Problems with ``group``'s committed offsets as read back after a restart."""
        problems: list[str] = []
        with self._lock:
            for (owner, topic, partition), history in self._commits.items():
                if owner != group or history.acknowledged is None:
                    continue
                allowed = {history.acknowledged, *history.unknown_since}
                got = committed.get((topic, partition))
                if got not in allowed:
                    problems.append(
                        f"group {group} {topic}/{partition}: committed {got}, but the last "
                        f"acknowledged commit was {history.acknowledged} "
                        f"(later unknown-outcome commits: {history.unknown_since})"
                    )
        return problems

    # ----------------------------------------------------------------- checking

    def check_log(self, partitions: Mapping[int, Sequence[StoredRecord]]) -> Verdict:
        """Judge one topic's stored records (partition -> records in offset order)."""
        with self._lock:
            acknowledged = dict(self._acknowledged)
            unknown = set(self._unknown)
            sent = set(self._sent)
        verdict = Verdict(acknowledged=len(acknowledged), unknown_outcome=len(unknown))
        where: dict[tuple[int, int], str | None] = {}
        counts: Counter[str] = Counter()
        for partition, records in sorted(partitions.items()):
            verdict.records += len(records)
            expected = records[0][0] if records else None
            for offset, message_id in records:
                if offset != expected:
                    verdict.problems.append(
                        f"partition {partition}: offset {offset} follows {expected - 1} "
                        "(offsets not contiguous)"
                        if expected is not None
                        else f"partition {partition}: bad offset {offset}"
                    )
                expected = offset + 1
                where[(partition, offset)] = message_id
                if message_id is not None:
                    counts[message_id] += 1
        for message_id, (partition, offset) in acknowledged.items():
            stored = where.get((partition, offset), "<nothing>")
            if stored != message_id:
                verdict.problems.append(
                    f"acknowledged {message_id} at {partition}:{offset} but that offset holds "
                    f"{stored}"
                )
        for message_id, count in counts.items():
            if message_id not in sent:
                verdict.problems.append(f"{message_id} is stored but was never sent")
            elif count > 1 and message_id not in unknown:
                verdict.problems.append(
                    f"{message_id} stored {count} times though every attempt's outcome was known"
                )
            elif message_id not in acknowledged and message_id not in unknown:
                verdict.problems.append(f"{message_id} is stored but its produce was refused")
            if count > 1 and message_id in unknown:
                verdict.duplicates_explained += count - 1
        return verdict


def read_topic(
    base_url: str, topic: str, *, token: str | None = None, timeout: float = 30.0
) -> dict[int, list[StoredRecord]]:
    """Every record of ``topic`` over HTTP, each partition from its start offset.

    Records whose value is a JSON object with a string ``id`` yield that id,
    others ``None``.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out: dict[int, list[StoredRecord]] = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=timeout) as client:
        info = client.get(f"/v1/topics/{topic}")
        info.raise_for_status()
        for partition in range(info.json()["partitions"]):
            records: list[StoredRecord] = []
            offset: int | str = "earliest"
            while True:
                page = client.get(
                    f"/v1/topics/{topic}/partitions/{partition}/records",
                    params={"offset": offset, "limit": 10_000, "max_bytes": 8 << 20},
                )
                page.raise_for_status()
                body = page.json()
                for record in body["records"]:
                    value = record["value"]
                    message_id = value.get("id") if isinstance(value, dict) else None
                    records.append(
                        (record["offset"], message_id if isinstance(message_id, str) else None)
                    )
                offset = body["next_offset"]
                if not body["records"] or offset >= body["high_watermark"]:
                    break
            out[partition] = records
    return out


def read_committed(
    base_url: str, group: str, *, token: str | None = None, timeout: float = 10.0
) -> dict[TopicPartition, int]:
    """``group``'s committed offsets over HTTP (empty when the group is unknown)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base_url}/v1/groups/{group}", headers=headers, timeout=timeout)
    if response.status_code == 404:
        return {}
    response.raise_for_status()
    return {
        (entry["topic"], entry["partition"]): entry["committed_offset"]
        for entry in response.json()["offsets"]
        # Describe lists every partition the group reads; null where nothing is committed.
        if entry["committed_offset"] is not None
    }
