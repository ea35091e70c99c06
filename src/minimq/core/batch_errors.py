"""Refusals of client RecordBatches (Kafka produce) and of idempotent producers.

They extend the tree of :mod:`minimq.errors` (each is an ``InvalidRequest``,
so any transport that knows only the base classes still answers "bad
request"); the Kafka transport maps each code to the Kafka error named here::

    InvalidRequest
    ├── CorruptBatch             CORRUPT_BATCH             Kafka 2  CORRUPT_MESSAGE
    ├── InvalidRecordBatch       INVALID_RECORD            Kafka 87 INVALID_RECORD
    ├── UnsupportedCompression   UNSUPPORTED_COMPRESSION   Kafka 76 UNSUPPORTED_COMPRESSION_TYPE
    ├── TransactionsUnsupported  TRANSACTIONS_UNSUPPORTED  Kafka 48 INVALID_TXN_STATE
    ├── OutOfOrderSequence       OUT_OF_ORDER_SEQUENCE     Kafka 45 OUT_OF_ORDER_SEQUENCE_NUMBER
    └── InvalidProducerEpoch     INVALID_PRODUCER_EPOCH    Kafka 47 INVALID_PRODUCER_EPOCH

Nothing of a refused produce is stored.
"""

from __future__ import annotations

from minimq.errors import InvalidRequest


class CorruptBatch(InvalidRequest):
    """Bytes that are not a whole batch: torn, wrong length, bad CRC, undecodable codec data."""

    code = "CORRUPT_BATCH"


class InvalidRecordBatch(InvalidRequest):
    """A whole, CRC-valid batch that breaks a rule: magic, record count, offsets, headers."""

    code = "INVALID_RECORD"


class UnsupportedCompression(InvalidRequest):
    """A compression codec other than none, gzip, snappy, lz4 and zstd."""

    code = "UNSUPPORTED_COMPRESSION"


class TransactionsUnsupported(InvalidRequest):
    """A transactional batch: MiniMQ has no transactions."""

    code = "TRANSACTIONS_UNSUPPORTED"


class OutOfOrderSequence(InvalidRequest):
    """An idempotent producer's batch does not follow its previous one (a gap or a reorder)."""

    code = "OUT_OF_ORDER_SEQUENCE"


class InvalidProducerEpoch(InvalidRequest):
    """A batch from an older epoch of a producer id than one already seen."""

    code = "INVALID_PRODUCER_EPOCH"
