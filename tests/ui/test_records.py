"""Display, chart points and exports of records (pure functions, no broker)."""

from __future__ import annotations

import csv
import io
import json

from minimq.client import Record
from minimq.ui.records import (
    Shown,
    chart_points,
    export_csv,
    export_ndjson,
    format_bytes,
    format_count,
    format_time,
    matches,
    numeric_fields,
    payload_time,
    payload_times,
    pretty_value,
    record_view,
    series_name,
    shown_bytes,
    summary_text,
    value_text,
)


def record(value: object, key: str | None = None, offset: int = 0, **headers: str) -> Record:
    return Record(
        topic="t",
        partition=0,
        offset=offset,
        timestamp=1_764_284_400_123,
        key=key,
        value=value,
        headers=dict(headers),
    )


def test_format_time_is_utc_iso_with_milliseconds() -> None:
    assert format_time(1_764_284_400_123) == "2025-11-27T23:00:00.123Z"
    assert format_time(0) == "1970-01-01T00:00:00.000Z"


def test_value_text_keeps_text_and_compacts_json() -> None:
    assert value_text("<script>alert(1)</script>") == "<script>alert(1)</script>"
    assert value_text({"a": [1, 2], "b": "é"}) == '{"a":[1,2],"b":"é"}'
    assert value_text(None) == "null"
    assert pretty_value({"b": 1, "a": 2}) == '{\n  "a": 2,\n  "b": 1\n}'
    assert pretty_value("plain") == "plain"


def test_numeric_fields_take_measurements_only() -> None:
    reading = {
        "sensor_id": "temperature-3f2a",
        "value": 21.4,
        "unit": "C",
        "timestamp": 1234,
        "ok": True,
        "humidity": 40,
        "nested": {"x": 1},
        "nan": float("nan"),
    }
    assert numeric_fields(reading) == {"value": 21.4, "humidity": 40.0}
    assert numeric_fields(7) == {"value": 7.0}
    assert numeric_fields(True) == {}
    assert numeric_fields("21.4") == {}
    assert numeric_fields([1, 2]) == {}


def test_series_are_named_after_the_sensor_then_the_key() -> None:
    assert series_name(record({"sensor_id": "hum-1", "value": 3}, key="k")) == "hum-1"
    assert series_name(record({"value": 3}, key="k")) == "k"
    assert series_name(record(3)) == "(no key)"


def test_chart_points_one_per_numeric_field() -> None:
    points = chart_points(
        [
            record({"sensor_id": "s1", "value": 1.5, "pressure": 1013}),
            record("text message"),
            record(2, key="k"),
        ]
    )
    assert points == [
        {"series": "s1 · value", "t": 1_764_284_400_123, "y": 1.5, "times": {}},
        {"series": "s1 · pressure", "t": 1_764_284_400_123, "y": 1013.0, "times": {}},
        {"series": "k · value", "t": 1_764_284_400_123, "y": 2.0, "times": {}},
    ]


def test_chart_points_carry_the_payload_times() -> None:
    payload = {"value": 3, "ts": 1_700_000_000, "measured_at": "2026-01-02T03:04:05+01:00"}
    (point,) = chart_points([record(payload)])
    assert point["times"] == {"ts": 1_700_000_000_000, "measured_at": 1_767_319_445_000}
    assert payload_time(1_700_000_000_123) == 1_700_000_000_123  # epoch ms stays ms
    assert payload_time("2026-01-02T03:04:05") == 1_767_323_045_000  # no zone: UTC
    assert payload_time("yesterday") is None
    assert payload_time(True) is None
    assert payload_time(-5) is None
    assert payload_times({"ts": "x", "value": 1, "created_at": 0}) == {"created_at": 0}


def test_bytes_that_are_not_json_are_text_or_hex_and_marked() -> None:
    assert shown_bytes(b"caf\xc3\xa9 <b>") == Shown("café <b>", "text, not JSON")
    assert shown_bytes(b"\x00\xff") == Shown("00 ff", "binary, 2 bytes, hex")
    binary = Record("t", 0, 1, 1, None, None, {}, value_bytes=b"\xff", key_bytes=b"\xfe")
    view = record_view(binary)
    assert (view["value_text"], view["value_note"]) == ("ff", "binary, 1 byte, hex")
    assert (view["key"], view["key_note"]) == ("fe", "binary, 1 byte, hex")
    assert not matches(binary, "null")  # the bytes are searched, not a JSON null
    assert matches(binary, "ff")


def test_filter_matches_key_value_and_headers_case_insensitively() -> None:
    r = record({"sensor_id": "Temp-1"}, key="Key-9", source="Sim")
    assert matches(r, "temp-1")
    assert matches(r, "KEY-9")
    assert matches(r, "source=sim")
    assert not matches(r, "humidity")


def test_export_ndjson_is_one_object_per_line_with_payloads_as_json() -> None:
    lines = list(export_ndjson([record({"v": 1}, key="k", offset=5, h="x")]))
    assert len(lines) == 1 and lines[0].endswith("\n")
    rows = [json.loads(line) for line in lines]
    assert rows == [
        {
            "topic": "t",
            "partition": 0,
            "offset": 5,
            "timestamp": 1_764_284_400_123,
            "time": "2025-11-27T23:00:00.123Z",
            "key": "k",
            "headers": {"h": "x"},
            "value": {"v": 1},
        }
    ]


def test_export_csv_has_a_header_and_defuses_formulas() -> None:
    text = "".join(
        export_csv(
            [
                record({"v": 1}, key="=cmd|' /C calc'!A0", offset=1),
                record(-3.5, offset=2),
                record("+1+1"),
            ]
        )
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "topic",
        "partition",
        "offset",
        "timestamp",
        "time",
        "key",
        "headers",
        "value",
    ]
    assert rows[1][5] == "'=cmd|' /C calc'!A0"
    assert rows[1][7] == '{"v":1}'
    assert rows[2][7] == "-3.5"
    assert rows[3][7] == "'+1+1"


def test_summary_is_a_short_reading() -> None:
    assert summary_text({"sensor_id": "t-1", "value": 21.4, "unit": "C"}) == "21.4 C"
    assert summary_text({"humidity": 40, "temperature": 21.5}) == "humidity=40, temperature=21.5"
    assert summary_text("<b>text</b>") == "<b>text</b>"


def test_numbers_have_thousands_separators_and_sizes_human_units() -> None:
    assert [format_count(n) for n in (0, 999, 1_000_000, None)] == [
        "0",
        "999",
        "1,000,000",
        "\u2013",
    ]
    assert [format_bytes(n) for n in (512, 1536, 3 * 1024**3)] == ["512 B", "1.5 KiB", "3.0 GiB"]


def test_binary_values_are_text_when_utf8_else_hex() -> None:
    assert value_text("h\u00e9".encode()) == "h\u00e9"
    shown = value_text(b"\xff\x00<b>")
    assert shown == "(binary, 5 bytes, hex) ff 00 3c 62 3e"
    assert pretty_value(b"\xff") == "(binary, 1 byte, hex) ff"
