from __future__ import annotations

import pytest

from minimq.core.records import NewRecord
from minimq.errors import InvalidRequest, MessageTooLarge
from minimq.recordbatch.frames import (
    HEADER_SIZE,
    MAX_BATCH_BYTES,
    crc_matches,
    decode_records,
    encode_batch,
    header_is_plausible,
    parse_header,
    payload_size,
)
from tests.storage.conftest import records


def test_header_fields_describe_the_batch() -> None:
    frame = encode_batch(500, records(3), now_ms=99)
    header = parse_header(frame)
    assert header.base_offset == 500
    assert header.total_size == len(frame)
    assert header.magic == 2
    assert header.record_count == 3
    assert header.last_offset == 502
    assert header.next_offset == 503
    assert header.base_timestamp == 1_000
    assert header.max_timestamp == 1_002
    assert header_is_plausible(header)
    assert crc_matches(frame, header)


def test_round_trip_keeps_keys_values_headers_and_timestamps() -> None:
    batch = [
        NewRecord(key=None, value=b"v", headers=(), timestamp=None),
        NewRecord(key=b"k", value=None, headers=(("a", b"1"), ("b", b"")), timestamp=7),
    ]
    frame = encode_batch(10, batch, now_ms=1234)
    decoded = decode_records(bytes(frame), 10, 10)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in decoded] == [
        (10, 1234, None, b"v", ()),
        (11, 7, b"k", None, (("a", b"1"), ("b", b""))),
    ]
    assert type(decoded[0].value) is bytes and type(decoded[1].key) is bytes


def test_decode_starts_mid_batch_and_stops_at_the_limit() -> None:
    frame = encode_batch(0, records(10), now_ms=0)
    assert [r.offset for r in decode_records(frame, 4, 3)] == [4, 5, 6]
    assert decode_records(frame, 0, 0) == []


def test_base_offset_is_outside_the_crc() -> None:
    frame = encode_batch(0, records(2), now_ms=0)
    frame[:8] = (12345).to_bytes(8, "big")
    header = parse_header(frame)
    assert header.base_offset == 12345
    assert crc_matches(frame, header)


def test_any_flipped_bit_after_the_crc_field_is_detected() -> None:
    frame = encode_batch(0, records(2), now_ms=0)
    header = parse_header(frame)
    for position in range(21, len(frame)):
        damaged = bytearray(frame)
        damaged[position] ^= 0x10
        assert not crc_matches(damaged, header), position


@pytest.mark.parametrize(
    "bad",
    [
        NewRecord(key="text", value=b"v"),  # type: ignore[arg-type]
        NewRecord(key=None, value=12),  # type: ignore[arg-type]
        NewRecord(key=None, value=b"v", headers=((b"k", b"v"),)),  # type: ignore[arg-type]
        NewRecord(key=None, value=b"v", timestamp="now"),  # type: ignore[arg-type]
    ],
)
def test_malformed_records_are_invalid_requests(bad: NewRecord) -> None:
    with pytest.raises(InvalidRequest):
        encode_batch(0, [bad], now_ms=0)


def test_garbage_header_is_implausible() -> None:
    assert not header_is_plausible(parse_header(bytes(HEADER_SIZE)))


def test_oversized_batch_is_rejected() -> None:
    with pytest.raises(MessageTooLarge):
        encode_batch(0, [NewRecord(key=None, value=bytes(MAX_BATCH_BYTES))], now_ms=0)


def test_payload_size_counts_key_value_and_headers() -> None:
    (record,) = decode_records(
        encode_batch(0, [NewRecord(b"ab", b"cde", (("xy", b"z"),))], now_ms=0), 0, 1
    )
    assert payload_size(record) == 2 + 3 + 2 + 1
