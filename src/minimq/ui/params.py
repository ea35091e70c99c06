"""Validated request parameters: a bad value is a 400 ``INVALID_REQUEST``, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import request

from minimq.errors import InvalidRequest


def int_param(name: str, default: int, *, minimum: int, maximum: int) -> int:
    """Query-string or form integer ``name`` within ``[minimum, maximum]``."""
    raw = request.values.get(name, "").strip()
    if not raw:
        return default
    return parse_int(name, raw, minimum=minimum, maximum=maximum)


def optional_int_param(name: str, *, minimum: int, maximum: int) -> int | None:
    raw = request.values.get(name, "").strip()
    if not raw:
        return None
    return parse_int(name, raw, minimum=minimum, maximum=maximum)


def parse_int(name: str, raw: str, *, minimum: int, maximum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def parse_time(raw: str) -> int:
    """Milliseconds since the epoch from an ISO 8601 time (naive means UTC) or a number."""
    text = raw.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"time must be ISO 8601 (2026-01-31T12:00:00) or epoch milliseconds, got {raw!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def text_param(name: str, *, max_length: int) -> str:
    value = request.values.get(name, "").strip()
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is longer than {max_length} characters")
    return value


def required_text_param(name: str, *, max_length: int) -> str:
    value = text_param(name, max_length=max_length)
    if not value:
        raise InvalidRequest(f"{name} is required")
    return value
