"""Cursor and time parsing: bad input is an InvalidRequest (400), never a crash."""

from __future__ import annotations

import pytest

from minimq.errors import InvalidRequest
from minimq.ui.params import parse_int, parse_time
from minimq.ui.queries import format_cursor, parse_cursor


def test_cursor_round_trips() -> None:
    assert parse_cursor("") == {}
    assert parse_cursor("1:98,0:120") == {0: 120, 1: 98}
    assert format_cursor({1: 98, 0: 120}) == "0:120,1:98"


@pytest.mark.parametrize("text", ["x", "0", "0:", ":5", "0:-1", "a:1", "0:1,,1:2"])
def test_bad_cursors_are_invalid_requests(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_cursor(text)


def test_times_are_iso_or_epoch_milliseconds() -> None:
    assert parse_time("1764284400000") == 1_764_284_400_000
    assert parse_time("2025-11-27T23:00:00") == 1_764_284_400_000
    assert parse_time("2025-11-27T23:00:00Z") == 1_764_284_400_000
    assert parse_time("2025-11-28T00:00:00+01:00") == 1_764_284_400_000
    with pytest.raises(InvalidRequest):
        parse_time("yesterday")


def test_integers_are_bounded() -> None:
    assert parse_int("n", "5", minimum=1, maximum=10) == 5
    for raw in ("0", "11", "x", "1.5"):
        with pytest.raises(InvalidRequest):
            parse_int("n", raw, minimum=1, maximum=10)
