"""Kafka RecordBatch v2: the frame codec every part of the broker that touches batches shares.

:mod:`minimq.recordbatch.frames` (layout, header parsing, CRC checks, encode and
decode) and :mod:`minimq.recordbatch.compression` (the codecs Kafka clients
use).  It sits below the core (which checks a Kafka client's frames), the
disk engine (which stores frames as they are) and the JetStream backend
(which encodes frames for Kafka fetches), and knows only the core's record
types (:mod:`minimq.core.records`).
"""
