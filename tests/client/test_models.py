"""Decoding broker JSON into result objects: fast path and clear contract errors."""

from __future__ import annotations

import pytest

from minimq.client import FetchResult, Record
from minimq.client._models import records_from_json
from minimq.errors import MiniMQError

RECORD = {
    "topic": "t",
    "partition": 1,
    "offset": 7,
    "timestamp": 5,
    "key": "k",
    "value": {"a": [1, None]},
    "headers": {"h": "v"},
}


def page(records: object) -> dict[str, object]:
    return {"topic": "t", "partition": 1, "records": records, "next_offset": 8,
            "high_watermark": 8}  # fmt: skip


def test_records_are_built_field_by_field() -> None:
    minimal = {"topic": "t", "partition": 0, "offset": 0, "timestamp": 1, "value": None}
    assert records_from_json([RECORD, minimal]) == [
        Record("t", 1, 7, 5, "k", {"a": [1, None]}, {"h": "v"}),
        Record("t", 0, 0, 1, None, None, {}),
    ]
    assert FetchResult.from_json(page([RECORD])).records == [Record.from_json(RECORD)]


@pytest.mark.parametrize(
    "records",
    [
        [{**RECORD, "offset": 8}, {k: v for k, v in RECORD.items() if k != "value"}],
        [RECORD, ["not", "an", "object"]],
        [RECORD, None],
        42,
    ],
)
def test_a_malformed_record_is_one_clear_error(records: object) -> None:
    with pytest.raises(MiniMQError, match="unexpected record in broker response"):
        FetchResult.from_json(page(records))


def test_a_page_without_records_is_a_clear_error() -> None:
    with pytest.raises(MiniMQError, match="unexpected broker response"):
        FetchResult.from_json({"topic": "t", "partition": 0})
