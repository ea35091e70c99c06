"""Records whose bytes are not JSON: the client gives them as bytes (the value rule)."""

from __future__ import annotations

import pytest

from minimq.client import Record
from minimq.client._models import records_from_json
from minimq.client._sse import SSEDecoder
from minimq.errors import MiniMQError

PLAIN = {"topic": "t", "partition": 0, "offset": 1, "timestamp": 2, "key": "k",
         "value": {"a": 1}, "headers": {"h": "v"}}  # fmt: skip
BINARY = {"topic": "t", "partition": 0, "offset": 2, "timestamp": 3, "key": None,
          "key_b64": "/w==", "value": None, "value_b64": "AAH/", "headers": {"h": "v"},
          "headers_b64": {"b": "wyg="}}  # fmt: skip


def test_base64_fields_become_bytes() -> None:
    plain, binary = records_from_json([PLAIN, BINARY])
    assert plain == Record("t", 0, 1, 2, "k", {"a": 1}, {"h": "v"})
    assert (plain.value_bytes, plain.key_bytes, plain.headers_bytes) == (None, None, {})
    assert binary.value is None and binary.value_bytes == b"\x00\x01\xff"
    assert binary.key is None and binary.key_bytes == b"\xff"
    assert binary.headers == {"h": "v"} and binary.headers_bytes == {"b": b"\xc3\x28"}


def test_an_empty_value_is_empty_bytes_not_none() -> None:
    (record,) = records_from_json([{**PLAIN, "value": None, "value_b64": ""}])
    assert record.value is None and record.value_bytes == b""


def test_a_tombstone_is_none_and_no_bytes() -> None:
    (record,) = records_from_json([{**PLAIN, "value": None}])
    assert record.value is None and record.value_bytes is None


@pytest.mark.parametrize("field", ["value_b64", "key_b64"])
def test_invalid_base64_is_a_contract_error(field: str) -> None:
    with pytest.raises(MiniMQError, match="unexpected record"):
        records_from_json([{**BINARY, field: "not base64!"}])


def test_stream_events_carry_the_bytes_too() -> None:
    decoder = SSEDecoder()
    data = (
        b'event: record\nid: 0:2\ndata: {"topic":"t","partition":0,"offset":2,"timestamp":3,'
        b'"key":null,"value":null,"value_b64":"aGk=","headers":{}}\n\n'
    )
    (record,) = decoder.feed_bytes(data)
    assert record.value_bytes == b"hi" and record.value is None
