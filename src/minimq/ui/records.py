"""How broker records are shown: display fields, chart points and exports.

Message contents are untrusted.  Nothing here produces HTML: templates rely on
Jinja autoescaping and the browser scripts on ``textContent``, so this module
only turns a :class:`~minimq.client.Record` into plain strings and numbers.

Chart points come from the JSON payload itself: a number payload is one point
named ``value``; an object payload gives one point per top-level numeric field
(``value``, ``temperature``, ``humidity``...), skipping fields that are clocks
or counters rather than measurements.  Each point belongs to a *series* named
after the sensor (``sensor_id`` and friends in the payload), else the record
key, so a chart draws one line per sensor and field.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict

from minimq.client import Record

SERIES_ID_FIELDS = ("sensor_id", "sensor", "device_id", "device", "source", "name", "id")
NON_MEASUREMENT_FIELDS = frozenset(
    {"timestamp", "ts", "time", "epoch", "offset", "partition", "seq", "sequence", "id"}
)
MAX_FIELDS_PER_RECORD = 8
NO_KEY_SERIES = "(no key)"
CSV_COLUMNS = ("topic", "partition", "offset", "timestamp", "time", "key", "headers", "value")
# A spreadsheet evaluates a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class RecordView(TypedDict):
    """One record as the browser scripts receive it (all strings are raw text)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    time: str
    key: str | None
    headers: dict[str, str]
    value_text: str
    summary: str


class ChartPoint(TypedDict):
    series: str
    t: int
    y: float


def format_time(timestamp_ms: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-27T23:10:00.123Z``."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def value_text(value: Any) -> str:
    """A text message as itself; any other JSON value as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def pretty_value(value: Any) -> str:
    """The payload for the detail view: indented JSON, or the text message."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def summary_text(value: Any) -> str:
    """A short reading for a dashboard card: ``21.4 C``, ``humidity=40``, else the text."""
    fields = numeric_fields(value)
    if isinstance(value, dict) and "value" in fields and isinstance(value.get("unit"), str):
        return f"{fields['value']:g} {value['unit']}"
    if fields:
        return ", ".join(f"{name}={number:g}" for name, number in fields.items())
    return value_text(value)


def record_view(record: Record) -> RecordView:
    return RecordView(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
        time=format_time(record.timestamp),
        key=record.key,
        headers=dict(record.headers),
        value_text=value_text(record.value),
        summary=summary_text(record.value),
    )


def matches(record: Record, needle: str) -> bool:
    """Case-insensitive substring search over key, headers and the payload text."""
    lowered = needle.casefold()
    haystacks = [record.key or "", value_text(record.value)]
    haystacks.extend(f"{name}={value}" for name, value in record.headers.items())
    return any(lowered in text.casefold() for text in haystacks)


def _is_measurement(value: Any) -> bool:
    # bool is an int subclass, but a flag is not something to plot.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def numeric_fields(value: Any) -> dict[str, float]:
    """The plottable numbers of one payload, by field name."""
    if _is_measurement(value):
        return {"value": float(value)}
    if not isinstance(value, dict):
        return {}
    found: dict[str, float] = {}
    for name, field in value.items():
        if name.casefold() in NON_MEASUREMENT_FIELDS or not _is_measurement(field):
            continue
        found[name] = float(field)
        if len(found) == MAX_FIELDS_PER_RECORD:
            break
    return found


def series_name(record: Record) -> str:
    """The sensor a record speaks for: an id field of the payload, else the key."""
    if isinstance(record.value, dict):
        for field in SERIES_ID_FIELDS:
            candidate = record.value.get(field)
            if isinstance(candidate, str) and candidate:
                return candidate
    return record.key or NO_KEY_SERIES


def chart_points(records: Iterable[Record]) -> list[ChartPoint]:
    """One point per numeric payload field, named ``<sensor> · <field>``."""
    points: list[ChartPoint] = []
    for record in records:
        sensor = series_name(record)
        for field, number in numeric_fields(record.value).items():
            points.append(ChartPoint(series=f"{sensor} · {field}", t=record.timestamp, y=number))
    return points


def export_json(records: Sequence[Record]) -> str:
    """The records as a JSON array, payloads kept as JSON values."""
    rows = [
        {
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "timestamp": r.timestamp,
            "time": format_time(r.timestamp),
            "key": r.key,
            "headers": r.headers,
            "value": r.value,
        }
        for r in records
    ]
    return json.dumps(rows, ensure_ascii=False, indent=2)


def _csv_cell(text: str) -> str:
    # Quote formula-like cells so that opening an export in a spreadsheet
    # never runs message contents as a formula (OWASP "CSV injection").
    if text.startswith(FORMULA_PREFIXES) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export_csv(records: Sequence[Record]) -> str:
    """The records as CSV with a header row; headers and payloads as JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            [
                r.topic,
                r.partition,
                r.offset,
                r.timestamp,
                format_time(r.timestamp),
                _csv_cell(r.key or ""),
                _csv_cell(json.dumps(r.headers, ensure_ascii=False) if r.headers else ""),
                _csv_cell(value_text(r.value)),
            ]
        )
    return buffer.getvalue()
