"""Idempotent Kafka producers: deduplicated retries and ordered sequences, per partition.

An idempotent producer gets a producer id (``Broker.init_producer_id``,
epoch 0) and numbers the records it sends to each partition 0, 1, 2, ...;
every batch carries its producer id, epoch and first sequence.  Per
(topic incarnation, partition, producer id) the broker remembers the last
:data:`BATCHES_REMEMBERED` batches (first and last sequence, base offset),
as Kafka does (clients keep at most 5 requests in flight), and decides each
new batch (:meth:`PartitionProducers.check`):

* its first and last sequence equal a remembered batch's: a **retry** of a
  batch already stored; answered with that batch's base offset, nothing stored;
* an epoch older than the producer's: ``INVALID_PRODUCER_EPOCH``;
* a newer epoch: accepted if its sequence is 0 (the producer started over),
  else ``OUT_OF_ORDER_SEQUENCE``;
* the same epoch: accepted if its first sequence follows the last one stored
  (sequences wrap from 2**31 - 1 to 0), else ``OUT_OF_ORDER_SEQUENCE``;
* a producer id with no state here: accepted whatever its sequence, and
  tracked from then on.  Kafka answers ``UNKNOWN_PRODUCER_ID`` there when the
  sequence is not 0, which only clients able to bump their epoch
  (InitProducerId v3+, not offered) can recover from; accepting costs only
  the deduplication of a retry whose original left the scanned log tail.

Restarts.  The state lives in memory and is rebuilt, the first time a
partition sees an idempotent batch, from the headers of the last
:data:`REBUILD_SCAN_BYTES` of its log (each stored batch keeps its producer
id, epoch and first sequence), so a retry after a broker restart is still
deduplicated.

Serializing.  The broker holds one lock per (partition, producer id) from
:meth:`check` until the append has returned and been :meth:`recorded
<PartitionProducers.record>`, so two copies of one batch can never both be
stored; different producers still share the partition's group commit.

Bounds: at most :data:`MAX_PRODUCERS_PER_PARTITION` producers per partition
(the least recently used is forgotten first).  Event-loop thread only.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Final, NamedTuple

from minimq.core.batch_errors import InvalidProducerEpoch, OutOfOrderSequence
from minimq.recordbatch.frames import BatchHeader

BATCHES_REMEMBERED: Final = 5
MAX_PRODUCERS_PER_PARTITION: Final = 10_000
REBUILD_SCAN_BYTES: Final = 64 * 1024 * 1024
_SEQUENCE_MODULUS: Final = 2**31


class StoredBatch(NamedTuple):
    first_sequence: int
    last_sequence: int
    base_offset: int


def last_sequence(header: BatchHeader) -> int:
    return (header.base_sequence + header.last_offset_delta) % _SEQUENCE_MODULUS


class _Producer:
    __slots__ = ("batches", "epoch")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches: deque[StoredBatch] = deque(maxlen=BATCHES_REMEMBERED)


class PartitionProducers:
    """The idempotence state of one partition (see the module docstring)."""

    def __init__(self) -> None:
        self._producers: OrderedDict[int, _Producer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._producers)

    def check(self, header: BatchHeader) -> int | None:
        """The base offset already stored for this batch (a retry), or None to append it.

        Raises ``InvalidProducerEpoch`` or ``OutOfOrderSequence`` (see the module docstring).
        """
        producer = self._producers.get(header.producer_id)
        if producer is None:
            return None
        epoch, first = header.producer_epoch, header.base_sequence
        if epoch < producer.epoch:
            raise InvalidProducerEpoch(
                f"producer {header.producer_id} epoch {epoch} is older than its epoch "
                f"{producer.epoch}"
            )
        if epoch > producer.epoch:
            if first != 0:
                raise OutOfOrderSequence(
                    f"producer {header.producer_id}'s new epoch {epoch} starts at sequence "
                    f"{first}, not 0"
                )
            return None
        last = last_sequence(header)
        for stored in producer.batches:
            if stored.first_sequence == first and stored.last_sequence == last:
                return stored.base_offset
        if not producer.batches:
            return None
        expected = (producer.batches[-1].last_sequence + 1) % _SEQUENCE_MODULUS
        if first != expected:
            raise OutOfOrderSequence(
                f"producer {header.producer_id} sent sequence {first}; the next one is {expected}"
            )
        return None

    def record(self, header: BatchHeader, base_offset: int) -> None:
        """Remember a stored batch of ``header``'s producer at ``base_offset``."""
        pid = header.producer_id
        producer = self._producers.get(pid)
        if producer is None or header.producer_epoch != producer.epoch:
            producer = self._producers[pid] = _Producer(header.producer_epoch)
        producer.batches.append(
            StoredBatch(header.base_sequence, last_sequence(header), base_offset)
        )
        self._producers.move_to_end(pid)
        while len(self._producers) > MAX_PRODUCERS_PER_PARTITION:
            self._producers.popitem(last=False)

    def rebuild(self, headers: Iterable[BatchHeader]) -> None:
        """Replay stored batch headers (oldest first), as if each had just been recorded."""
        for header in headers:
            producer = self._producers.get(header.producer_id)
            if producer is not None and header.producer_epoch < producer.epoch:
                continue
            self.record(header, header.base_offset)
