"""How broker records are shown: display fields, chart points and exports.

Message contents are untrusted.  Nothing here produces HTML: templates rely on
Jinja autoescaping and the browser scripts on ``textContent``, so this module
only turns a :class:`~minimq.client.Record` into plain strings and numbers.

Values that are not JSON (from a Kafka producer) come by the broker's value
rule as bytes; they are shown as their text when it is UTF-8, marked "text,
not JSON", else as hex, marked "binary, N bytes, hex" (:func:`shown_bytes`);
keys and header values that are not UTF-8 likewise.

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
from base64 import b64encode
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from minimq.client import Record

SERIES_ID_FIELDS = ("sensor_id", "sensor", "device_id", "device", "source", "name", "id")
NON_MEASUREMENT_FIELDS = frozenset(
    {"timestamp", "ts", "time", "epoch", "offset", "partition", "seq", "sequence", "id"}
)
MAX_FIELDS_PER_RECORD = 8
# Payload fields that can give a chart its time axis (besides names ending so).
TIME_FIELDS = frozenset({"timestamp", "ts", "time", "epoch", "datetime", "date"})
TIME_FIELD_SUFFIXES = ("_at", "_time", "_ts", "_timestamp")
EPOCH_SECONDS_BELOW = 10**11
LATEST_PAYLOAD_TIME_MS = 7_258_118_400_000  # 2200-01-01
NO_KEY_SERIES = "(no key)"
CSV_COLUMNS = ("topic", "partition", "offset", "timestamp", "time", "key", "headers", "value")
# A spreadsheet evaluates a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


class RecordView(TypedDict):
    """One record as the browser scripts receive it (all strings are raw text).

    ``value_note`` / ``key_note`` say how bytes that are not JSON (or not
    UTF-8, for a key) are shown: ``""`` for JSON, ``"text, not JSON"``,
    ``"binary, 12 bytes, hex"``.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    time: str
    key: str | None
    key_note: str
    headers: dict[str, str]
    value_text: str
    value_note: str
    summary: str


@dataclass(frozen=True)
class Shown:
    """Bytes or a JSON value as the UI shows it: the text and what kind of text it is."""

    text: str
    note: str = ""


class ChartPoint(TypedDict):
    """``t`` is the record's timestamp; ``times`` the payload's own times, by field (ms)."""

    series: str
    t: int
    y: float
    times: dict[str, int]


def format_time(timestamp_ms: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-27T23:10:00.123Z``."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_count(number: int | None) -> str:
    """``1234567`` as ``1,234,567`` (the UI's numbers all have thousands separators)."""
    return "\u2013" if number is None else f"{number:,}"


def format_bytes(size: int) -> str:
    """A size in human units: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    amount = float(size)
    for unit in BYTE_UNITS:
        if amount < 1024 or unit == BYTE_UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


TEXT_NOT_JSON = "text, not JSON"


def shown_bytes(data: bytes, *, text_note: str = TEXT_NOT_JSON) -> Shown:
    """Bytes by the broker's value rule: the text when they are UTF-8, else hex, each marked."""
    try:
        return Shown(data.decode("utf-8"), text_note)
    except UnicodeDecodeError:
        unit = "byte" if len(data) == 1 else "bytes"
        return Shown(data.hex(" "), f"binary, {len(data):,} {unit}, hex")


def bytes_text(data: bytes) -> str:
    """Raw bytes as text when they are UTF-8, else as hex marked as such."""
    shown = shown_bytes(data)
    return shown.text if shown.note == TEXT_NOT_JSON else f"({shown.note}) {shown.text}"


def value_text(value: Any) -> str:
    """A text message as itself, raw bytes by :func:`bytes_text`, other JSON as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes_text(bytes(value))
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def pretty_value(value: Any) -> str:
    """The payload for the detail view: indented JSON, or the text message."""
    if isinstance(value, str | bytes | bytearray):
        return value_text(value)
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def summary_text(value: Any) -> str:
    """A short reading for a dashboard card: ``21.4 C``, ``humidity=40``, else the text."""
    fields = numeric_fields(value)
    if isinstance(value, dict) and "value" in fields and isinstance(value.get("unit"), str):
        return f"{fields['value']:g} {value['unit']}"
    if fields:
        return ", ".join(f"{name}={number:g}" for name, number in fields.items())
    return value_text(value)


def shown_value(record: Record) -> Shown:
    """The record's value: compact JSON (a text message as itself), else its bytes, marked."""
    if record.value_bytes is not None:
        return shown_bytes(record.value_bytes)
    return Shown(value_text(record.value))


def shown_key(record: Record) -> Shown | None:
    """The record's key; a key that is not UTF-8 as hex, marked; None without a key."""
    if record.key_bytes is not None:
        return shown_bytes(record.key_bytes)
    return None if record.key is None else Shown(record.key)


def shown_headers(record: Record) -> dict[str, Shown]:
    """Every header, text ones as they are and the others (not UTF-8) as hex, marked."""
    headers = {
        name: Shown("" if value is None else value) for name, value in record.headers.items()
    }
    headers.update(
        (name, shown_bytes(value, text_note="")) for name, value in record.headers_bytes.items()
    )
    return dict(sorted(headers.items()))


def pretty_record_value(record: Record) -> Shown:
    """The value for the message page: indented JSON, the text message, or its bytes, marked."""
    if record.value_bytes is not None:
        return shown_bytes(record.value_bytes)
    return Shown(pretty_value(record.value))


def record_view(record: Record) -> RecordView:
    value = shown_value(record)
    key = shown_key(record)
    return RecordView(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
        time=format_time(record.timestamp),
        key=None if key is None else key.text,
        key_note="" if key is None else key.note,
        headers={name: shown.text for name, shown in shown_headers(record).items()},
        value_text=value.text,
        value_note=value.note,
        summary=value.text if value.note else summary_text(record.value),
    )


def matches(record: Record, needle: str) -> bool:
    """Case-insensitive substring search over key, headers and the value, as the UI shows them."""
    lowered = needle.casefold()
    key = shown_key(record)
    haystacks = ["" if key is None else key.text, shown_value(record).text]
    haystacks.extend(f"{name}={shown.text}" for name, shown in shown_headers(record).items())
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
        if (
            name.casefold() in NON_MEASUREMENT_FIELDS
            or _is_time_field(name)
            or not _is_measurement(field)
        ):
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


def _is_time_field(name: str) -> bool:
    folded = name.casefold()
    return folded in TIME_FIELDS or folded.endswith(TIME_FIELD_SUFFIXES)


def payload_time(field: Any) -> int | None:
    """A payload field as epoch ms: ISO 8601 text (UTC unless it says), or epoch ms or s.

    An epoch number is taken as seconds below 10^11 (10^11 ms is 1973, 10^11 s
    the year 5138); a time outside 1970..2200 is no time.
    """
    if isinstance(field, str):
        try:
            moment = datetime.fromisoformat(field)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ms = int(moment.timestamp() * 1000)
    elif _is_measurement(field):
        ms = int(field * 1000 if abs(field) < EPOCH_SECONDS_BELOW else field)
    else:
        return None
    return ms if 0 <= ms <= LATEST_PAYLOAD_TIME_MS else None


def payload_times(value: Any) -> dict[str, int]:
    """The top-level fields of a payload that name a time (``ts``, ``measured_at``...), in ms."""
    if not isinstance(value, dict):
        return {}
    times: dict[str, int] = {}
    for name, field in value.items():
        if _is_time_field(name):
            ms = payload_time(field)
            if ms is not None:
                times[name] = ms
    return times


def chart_points(records: Iterable[Record]) -> list[ChartPoint]:
    """One point per numeric payload field, named ``<sensor> · <field>``.

    Each point carries the record's timestamp and the payload's own times, so
    the chart can plot by either (readings buffered during an outage carry
    when they were measured, not when they reached the broker).
    """
    points: list[ChartPoint] = []
    for record in records:
        sensor = series_name(record)
        fields = numeric_fields(record.value)
        times = payload_times(record.value) if fields else {}
        for field, number in fields.items():
            points.append(
                ChartPoint(series=f"{sensor} · {field}", t=record.timestamp, y=number, times=times)
            )
    return points


def _export_row(r: Record) -> dict[str, Any]:
    """A record as the HTTP API writes it: bytes that are not JSON (or UTF-8) as base64."""
    row: dict[str, Any] = {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "time": format_time(r.timestamp),
        "key": r.key,
        "headers": r.headers,
        "value": r.value,
    }
    if r.key_bytes is not None:
        row["key_b64"] = b64encode(r.key_bytes).decode()
    if r.value_bytes is not None:
        row["value_b64"] = b64encode(r.value_bytes).decode()
    if r.headers_bytes:
        row["headers_b64"] = {n: b64encode(v).decode() for n, v in r.headers_bytes.items()}
    return row


def export_ndjson(records: Iterable[Record]) -> Iterator[str]:
    """One JSON object per line and record, payloads kept as JSON values (a stream)."""
    for r in records:
        yield json.dumps(_export_row(r), ensure_ascii=False) + "\n"


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


def _marked(shown: Shown) -> str:
    # A CSV cell has no room for a badge: binary is prefixed with what it is.
    return f"({shown.note}) {shown.text}" if shown.note.startswith("binary") else shown.text


def _headers_cell(r: Record) -> str:
    headers = {name: _marked(shown) for name, shown in shown_headers(r).items()}
    return json.dumps(headers, ensure_ascii=False) if headers else ""


def export_csv(records: Iterable[Record]) -> Iterator[str]:
    """CSV with a header row, one line per record (a stream); headers and payloads as JSON text."""
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
                _csv_cell(_marked(shown_key(r) or Shown(""))),
                _csv_cell(_headers_cell(r)),
                _csv_cell(_marked(shown_value(r))),
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
