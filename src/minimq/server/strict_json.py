"""Strict JSON request bodies: anything ambiguous or lossy is a 400, never a 500.

Rejected: invalid UTF-8 and lone surrogates, NaN/Infinity, numbers that do
not fit a double or integers outside 64 bits (they could not come back
identical), nesting deeper than :data:`MAX_DEPTH`, and duplicate object keys.

orjson parses everything first (fast, and it already rejects the first two
kinds). It silently keeps the last duplicate key and turns out-of-range
integers into floats, so two cheap checks decide whether the exact (slower)
stdlib parse is needed: the raw text's ``:`` count against the parsed tree's
key count (equal only when no key was dropped and no string holds a colon),
and any run of 19+ digits (where 64-bit integers end). The digit scan only
runs when the parsed tree holds a float: an out-of-range integer always comes
back as one, so a tree without floats has none.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from minimq.errors import InvalidRequest

MAX_DEPTH = 64
_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1
# Digits become "0", everything else " ": a run of 19 digits is then a plain
# substring search, several times faster than a regular expression.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def loads(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` strictly; raise :class:`InvalidRequest` with a reason.

    ``max_depth`` is for text that sits inside a request body (a record
    value), whose own nesting is the body's limit less the levels above it.
    """
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
    kind = type(parsed)
    if kind is dict or kind is list:
        keys, has_float = _walk(parsed, max_depth)
    else:
        keys, has_float = 0, kind is float
    if raw.count(b":") == keys and not (
        # The digit scan costs a sixth of a batch's parse; without a float in the
        # tree no integer was out of range, so it only runs when one is there.
        has_float and _LONG_DIGIT_RUN in raw.translate(_DIGITS_ONLY)
    ):
        return parsed
    return _exact_loads(raw)


def _walk(value: Any, max_depth: int) -> tuple[int, bool]:
    """Total object keys in ``value`` and whether it holds a float.

    Raises past ``max_depth`` levels.
    """
    keys = 0
    has_float = False
    level = [value]
    for _ in range(max_depth):
        # Breadth-first, one level at a time: only containers go to the next level.
        # A plain loop, not a generator per container: 3x faster on a batch of
        # 1,000 records, where this walk dominated the parse.
        deeper: list[Any] = []
        push = deeper.append
        for item in level:
            children = item
            if type(item) is dict:
                keys += len(item)
                children = item.values()
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    push(child)
                elif kind is float:
                    has_float = True
        if not deeper:
            return keys, has_float
        level = deeper
    raise InvalidRequest(f"JSON nested deeper than {max_depth} levels")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise InvalidRequest(f"duplicate key {key!r} in JSON object")
        seen.add(key)
    return dict(pairs)


def _checked_int(text: str) -> int:
    if len(text) > 21:
        raise InvalidRequest("integer outside the 64-bit range")
    value = int(text)
    if not _INT_MIN <= value <= _UINT_MAX:
        raise InvalidRequest("integer outside the 64-bit range")
    return value


def _checked_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidRequest("number too large for a double")
    return value


def _reject_constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not valid JSON")


def _exact_loads(raw: bytes) -> Any:
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_int=_checked_int,
            parse_float=_checked_float,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
