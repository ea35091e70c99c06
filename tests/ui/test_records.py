"""Display, chart points and exports of records (pure functions, no broker)."""

from __future__ import annotations

import csv
import io
import json

from minimq.client import Record
from minimq.ui.records import (
    chart_points,
    export_csv,
    export_json,
    format_time,
    matches,
    numeric_fields,
    pretty_value,
    series_name,
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
        {"series": "s1 · value", "t": 1_764_284_400_123, "y": 1.5},
        {"series": "s1 · pressure", "t": 1_764_284_400_123, "y": 1013.0},
        {"series": "k · value", "t": 1_764_284_400_123, "y": 2.0},
    ]


def test_filter_matches_key_value_and_headers_case_insensitively() -> None:
    r = record({"sensor_id": "Temp-1"}, key="Key-9", source="Sim")
    assert matches(r, "temp-1")
    assert matches(r, "KEY-9")
    assert matches(r, "source=sim")
    assert not matches(r, "humidity")


def test_export_json_keeps_payloads_as_json() -> None:
    rows = json.loads(export_json([record({"v": 1}, key="k", offset=5, h="x")]))
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
    text = export_csv(
        [
            record({"v": 1}, key="=cmd|' /C calc'!A0", offset=1),
            record(-3.5, offset=2),
            record("+1+1"),
        ]
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
