"""The hand-made FetchResponse encoding is byte for byte kio's, for every served version.

Fetch writes its record batches into the frame without kio's writer (to save
two copies per consumed batch), so kio's own encoding of the same response is
the reference: any field out of place or missing for a version shows here.
"""

from __future__ import annotations

import datetime

import pytest
from kio.index import load_response_schema
from kio.schema.errors import ErrorCode

from minimq.kafka.codec import build, encode_response, nested_type
from minimq.kafka.fetch import _PartitionRead, encode_fetch_response

BATCH_A = bytes(range(256)) * 3
BATCH_B = b"\x00\x01second batch" * 40


def reads() -> list[_PartitionRead]:
    served = _PartitionRead("orders", 0, 5, 1 << 20, high_watermark=90, log_start_offset=3)
    served.records = [memoryview(BATCH_A), memoryview(BATCH_B)]
    served.records_size = len(BATCH_A) + len(BATCH_B)
    empty = _PartitionRead("orders", 1, 7, 1 << 20, high_watermark=7, log_start_offset=0)
    refused = _PartitionRead("gone", 0, 0, 1 << 20, error=ErrorCode.unknown_topic_or_partition)
    other = _PartitionRead("täglich", 2, 0, 1 << 20, high_watermark=1, log_start_offset=0)
    other.records = [BATCH_B]
    other.records_size = len(BATCH_B)
    return [served, empty, refused, other]


def kio_encoding(version: int, partitions: list[_PartitionRead], correlation_id: int = 42) -> bytes:
    response_type = load_response_schema(1, version)
    topics: dict[str, list[object]] = {}
    for read in partitions:
        topics.setdefault(read.topic, []).append(
            build(
                nested_type(response_type, "PartitionData"),
                {
                    "partition_index": read.partition,
                    "error_code": read.error,
                    "high_watermark": read.high_watermark,
                    "last_stable_offset": read.high_watermark,
                    "log_start_offset": read.log_start_offset,
                    "aborted_transactions": None,
                    "preferred_read_replica": -1,
                    "records": b"".join(read.records),
                },
            )
        )
    response = build(
        response_type,
        {
            "throttle_time": datetime.timedelta(0),
            "error_code": ErrorCode.none,
            "session_id": 0,
            "responses": [
                build(
                    nested_type(response_type, "FetchableTopicResponse"),
                    {"topic": name, "partitions": parts},
                )
                for name, parts in topics.items()
            ],
        },
    )
    return encode_response(correlation_id, response)


@pytest.mark.parametrize("version", range(4, 12))
def test_fetch_response_matches_kio_for_every_version(version: int) -> None:
    ours = encode_response(42, encode_fetch_response(version, reads()))
    assert ours == kio_encoding(version, reads())


def test_an_answer_without_records_matches_kio() -> None:
    nothing = [_PartitionRead("orders", 0, 9, 1 << 20, high_watermark=9, log_start_offset=0)]
    assert encode_response(7, encode_fetch_response(11, nothing)) == kio_encoding(11, nothing, 7)
