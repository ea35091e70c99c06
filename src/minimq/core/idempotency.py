"""The idempotent-produce window: recent ``Idempotency-Key``s of each topic and what they stored.

A producer that did not learn how a produce ended (a timeout, a dropped
connection, a 503 or 507) sends the same request again under the same key.
The broker answers it from this window: with the offsets the first attempt
stored, storing nothing again.  Where the first attempt stored only some of
its partitions (one of them failed), the retry appends only the partitions
still missing, each record to the partition the first attempt chose for it,
and answers with all the offsets.  A retry that arrives while the first
attempt is still appending waits for it.  The same key with other records is
refused (``IdempotencyKeyReused``); an attempt that stored nothing leaves the
key free for any request.

Keys belong to one topic incarnation (``topic_id``): a topic deleted and
created again starts with an empty window, and deleting a topic frees its keys.

Bounds.  At most ``keys_per_topic`` keys per topic and ``max_keys`` in all,
each kept at most ``window_ms`` (monotonic clock); the oldest go first when a
bound is reached.  In the broker-wide count a key that wrote N partitions
counts N times, because it holds one base offset per partition: so the
window's memory is bounded by ``max_keys`` (about 600 bytes per unit) however
the keys are used, and does not grow with the number of records.  Keys still
appending are never dropped (there are at most as many as requests in flight).

Lifetime.  The window lives in memory, so it covers every retry while the
broker runs (client timeouts, lost answers, 503/507 refusals, both HTTP
paths) but not one sent after a restart: a retry of a request whose answer
was lost in a broker crash may still be stored twice.  Surviving restarts
needs the key in the log itself (Kafka stores a producer id and sequence in
every RecordBatch and rebuilds this state from the log); see
``docs/http-api.md``.

Other processes.  Where several brokers share one backend (JetStream
gateways), a retry may reach one that never saw the key.  So each
partition's batch of a keyed request is named (:func:`dedup_id`, from the
topic incarnation, the key, the partition and those records, the same on
every broker) and the backend may recognise the repeat by that name within
its own duplicate window, answering with the original offsets.  For the
name to match, every broker must give the records the same partitions: a
keyed request's round-robin start comes from the key
(:func:`keyed_spread_start`), not from this broker's rotation.

Concurrency: event-loop thread only.
"""

from __future__ import annotations

import asyncio
import hashlib
import marshal
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import crc32c

from minimq.core.models import ProduceRecord

DEFAULT_WINDOW_MS: Final = 10 * 60 * 1000
DEFAULT_KEYS_PER_TOPIC: Final = 10_000
DEFAULT_MAX_KEYS: Final = 50_000


@dataclass(frozen=True, slots=True)
class WindowBounds:
    """How long and how many keys the window keeps (see the module docstring)."""

    window_ms: int = DEFAULT_WINDOW_MS
    keys_per_topic: int = DEFAULT_KEYS_PER_TOPIC
    max_keys: int = DEFAULT_MAX_KEYS


DEFAULT_WINDOW_BOUNDS: Final = WindowBounds()


def dedup_id(topic_id: str, key: str, partition: int, records: Sequence[ProduceRecord]) -> str:
    """The name of the batch a keyed request stores in ``partition``: 32 hex digits.

    The same on every broker and Python version (unlike :func:`fingerprint`,
    whose ``marshal`` bytes may differ between processes): SHA-256 over
    length-prefixed fields, a missing key or timestamp told apart from an
    empty one.
    """
    digest = hashlib.sha256()

    def put(field: bytes | None) -> None:
        if field is None:
            digest.update(b"\xff" * 8)
        else:
            digest.update(len(field).to_bytes(8, "big"))
            digest.update(field)

    for text in (topic_id, key, str(partition), str(len(records))):
        put(text.encode())
    for value, record_key, headers, _, timestamp in records:
        put(value)
        put(record_key)
        put(None if timestamp is None else str(timestamp).encode())
        put(str(len(headers)).encode())
        for name, header_value in headers:
            put(name.encode())
            put(header_value)
    return digest.hexdigest()[:32]


def keyed_spread_start(key: str, partitions: int) -> int:
    """The round-robin start of a keyed request's unkeyed records: from the key, so that a
    retry through any broker spreads them as the first attempt did."""
    return int(crc32c.crc32c(key.encode())) % partitions


def fingerprint(records: Sequence[ProduceRecord]) -> bytes:
    """16 bytes that tell two record lists apart (SHA-256 of their exact fields).

    ``marshal`` is deterministic within a process for these types (bytes,
    str, int, None, tuples), and the window never outlives the process.
    """
    return hashlib.sha256(marshal.dumps(list(map(tuple, records)))).digest()[:16]


@dataclass(slots=True, eq=False)
class KeyedProduce:
    """One key's produce: what it stored so far, per partition.

    ``spread_start`` is the round-robin start its records were assigned from,
    so a retry puts every record where the first attempt put it.
    ``partitions`` is how many partitions its records go to; it is complete
    once that many are stored.  The stored ones are kept as one flat tuple
    ``(partition, base offset, partition, base offset, ...)``: a dict per key
    would be a third of the window's memory.
    """

    topic_id: str
    key: str
    fingerprint: bytes
    created: float
    spread_start: int
    partitions: int
    stored: tuple[int, ...] = ()
    in_flight: asyncio.Future[None] | None = None

    @property
    def complete(self) -> bool:
        return len(self.stored) == 2 * self.partitions

    @property
    def bases(self) -> dict[int, int]:
        """The base offset of each partition stored so far."""
        stored = self.stored
        return dict(zip(stored[::2], stored[1::2], strict=True))

    def add_bases(self, bases: dict[int, int]) -> None:
        self.stored += tuple(value for item in bases.items() for value in item)


class ProduceWindow:
    """Every topic's recent keys, oldest first (see the module docstring)."""

    def __init__(
        self, bounds: WindowBounds | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bounds = bounds or WindowBounds()
        self._clock = clock
        # Creation order is age order: the oldest key is first, overall and per topic.
        self._all: OrderedDict[tuple[str, str], KeyedProduce] = OrderedDict()
        self._by_topic: dict[str, OrderedDict[str, KeyedProduce]] = {}
        # The broker-wide count: every key weighs the partitions it writes.
        self.weight = 0

    def __len__(self) -> int:
        return len(self._all)

    def find(self, topic_id: str, key: str) -> KeyedProduce | None:
        """The key's produce, unless there is none or it is older than the window."""
        entry = self._all.get((topic_id, key))
        if entry is not None and entry.in_flight is None and self._expired(entry):
            self._remove(entry)
            return None
        return entry

    def begin(
        self, topic_id: str, key: str, fingerprint: bytes, spread_start: int, partitions: int
    ) -> KeyedProduce:
        """Record a new attempt under ``key`` (replacing one that stored nothing)."""
        old = self._all.get((topic_id, key))
        if old is not None:
            self._remove(old)
        self.expire()
        topic = self._by_topic.setdefault(topic_id, OrderedDict())
        self._evict_oldest(topic, lambda: len(topic) >= self.bounds.keys_per_topic)
        weight = max(partitions, 1)
        self._evict_oldest(self._all, lambda: self.weight + weight > self.bounds.max_keys)
        entry = KeyedProduce(topic_id, key, fingerprint, self._clock(), spread_start, weight)
        topic = self._by_topic.setdefault(topic_id, OrderedDict())
        topic[key] = entry
        self._all[(topic_id, key)] = entry
        self.weight += weight
        return entry

    def forget_topic(self, topic_id: str) -> None:
        """The topic incarnation was deleted: its keys go."""
        for key, entry in self._by_topic.pop(topic_id, {}).items():
            del self._all[(topic_id, key)]
            self.weight -= entry.partitions

    def expire(self) -> int:
        """Drop the keys older than the window; return how many went."""
        dropped = 0
        while self._all:
            oldest = next(iter(self._all.values()))
            if oldest.in_flight is not None or not self._expired(oldest):
                break
            self._remove(oldest)
            dropped += 1
        return dropped

    def _expired(self, entry: KeyedProduce) -> bool:
        return (self._clock() - entry.created) * 1000 > self.bounds.window_ms

    def _evict_oldest(self, entries: Mapping[Any, KeyedProduce], full: Callable[[], bool]) -> None:
        """Remove the oldest of ``entries`` while ``full()`` says so."""
        while entries and full():
            oldest = next(iter(entries.values()))
            if oldest.in_flight is not None:
                return  # still appending: the bound waits for it (see the module docstring)
            self._remove(oldest)

    def _remove(self, entry: KeyedProduce) -> None:
        del self._all[(entry.topic_id, entry.key)]
        self.weight -= entry.partitions
        topic = self._by_topic[entry.topic_id]
        del topic[entry.key]
        if not topic:
            del self._by_topic[entry.topic_id]
