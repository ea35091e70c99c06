"""The event-stream decoder on the wire format the broker sends."""

from __future__ import annotations

import pytest

from minimq.client import Record
from minimq.client._sse import SSEDecoder
from minimq.errors import MiniMQError

RECORD = (
    '{"topic":"t","partition":1,"offset":7,"timestamp":5,"key":null,"value":{"a":1},"headers":{}}'
)


def feed_all(decoder: SSEDecoder, lines: list[str]) -> list[Record]:
    return [r for r in map(decoder.feed, lines) if r is not None]


def test_record_events_are_decoded_and_comments_ignored() -> None:
    lines = [": keep-alive", "", "event: record", "id: 1:7", f"data: {RECORD}", "", ": ping", ""]
    assert feed_all(SSEDecoder(), lines) == [Record("t", 1, 7, 5, None, {"a": 1}, {})]


def test_other_events_and_empty_data_are_skipped() -> None:
    lines = ["event: hello", "data: {}", "", "event: record", ""]
    assert feed_all(SSEDecoder(), lines) == []


def test_data_without_space_and_split_over_lines() -> None:
    split = RECORD.index(',"offset"')
    head, tail = RECORD[:split], RECORD[split:]
    # Multi-line data joins with newlines, which JSON treats as whitespace.
    lines = ["event:record", f"data:{head}", f"data:{tail}", ""]
    assert feed_all(SSEDecoder(), lines)[0].offset == 7


def test_garbage_data_is_a_clear_error() -> None:
    with pytest.raises(MiniMQError, match="invalid stream event"):
        feed_all(SSEDecoder(), ["event: record", "data: {nope", ""])


def test_bytes_are_split_into_lines_whatever_the_chunking() -> None:
    body = f": keep-alive\r\n\r\nevent: record\r\ndata: {RECORD}\r\n\r\n".encode() * 2
    for size in (1, 7, len(body)):
        decoder = SSEDecoder()
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        records = [r for chunk in chunks for r in decoder.feed_bytes(chunk)]
        assert [r.offset for r in records] == [7, 7], size
