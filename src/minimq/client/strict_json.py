"""The broker's strict JSON rule on the client side: refuse before sending, never rewrite.

The broker answers 400 to any request body that is ambiguous or lossy (its
``minimq.server.strict_json``). This package may not import the broker, so the
rule is mirrored here, and ``tests/client/test_strict_json.py`` feeds the same
inputs to both copies to keep them equal. Without it, orjson would write NaN
and Infinity as ``null`` (the broker would store a different value) and raise
a bare ``TypeError`` for a huge integer.

Accepted, for a Python value (:func:`check`) and for JSON text (:func:`loads`):

- integers from -2**63 to 2**64-1 (64 bits, signed or unsigned);
- finite floats (NaN and Infinity are not JSON);
- strings and keys that are valid Unicode (no lone surrogate);
- objects whose keys are ``str`` (JSON has no other kind);
- at most :data:`MAX_DEPTH` levels of nesting in the request body, so
  :data:`VALUE_MAX_DEPTH` in a value, which sits three levels down
  (``{"records": [{"value": ...}]}``);
- from text only: no duplicate keys (Python's parser keeps the last one).

The Python types are ``None``, ``bool``, ``int``, ``float``, ``str``, ``list``,
``tuple`` and ``dict``, plus the subclasses of ``str``, ``int``, ``list`` and
``dict`` that orjson writes as their base type (``IntEnum``, ``OrderedDict``).
Anything else (``datetime``, ``UUID``, ``Decimal``, ``set``, ``bytes``, a
plain ``Enum``) is refused rather than silently turned into something else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from minimq.errors import InvalidRequest

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
MAX_DEPTH = 64
VALUE_MAX_DEPTH = MAX_DEPTH - 3
_INT_RANGE = "outside the 64-bit range the broker accepts (-2**63 to 2**64-1)"
_EXACT_TYPES = frozenset({str, int, float, bool, type(None), list, tuple, dict})


class _NotStrict(Exception):
    """Raised deep in :func:`_check`; each container on the way up adds its step."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.steps: list[str | int] = []


class _TooDeep(_NotStrict):
    """Named by the whole value: its path would be sixty-odd ``[0]``."""


def check(value: Any, name: str = "value", *, max_depth: int = VALUE_MAX_DEPTH) -> None:
    """Raise :class:`InvalidRequest` naming where and why ``value`` is not strict JSON.

    ``name`` starts the path in the message (``value['readings'][3]: NaN ...``).
    """
    try:
        _check(value, max_depth)
    except _TooDeep:
        raise InvalidRequest(f"{name}: nested deeper than {max_depth} levels") from None
    except _NotStrict as exc:
        where = name + "".join(f"[{step!r}]" for step in reversed(exc.steps))
        raise InvalidRequest(f"{where}: {exc.reason}") from None


def check_record(record: Mapping[str, Any]) -> None:
    """:func:`check` every field of one produce entry, each named by its field.

    The fields sit where a value does (``{"records": [{"timestamp": ...}]}``), so the
    value's depth limit serves them all.
    """
    for name, field in record.items():
        check(field, name)


def loads(text: str, name: str = "value", *, max_depth: int = VALUE_MAX_DEPTH) -> Any:
    """Parse JSON ``text`` by the broker's rule; :class:`InvalidRequest` says why not.

    ``name`` starts the path in messages, as for :func:`check`.
    """
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_int=_int_in_range,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise InvalidRequest(f"{name}: nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise InvalidRequest(f"not valid JSON: {exc}") from None
    # The parse hooks cannot see depth, nor a lone surrogate written as "\ud800".
    check(value, name, max_depth=max_depth)
    return value


def _check(value: Any, room: int) -> None:
    """Raise :class:`_NotStrict` for the first part of ``value`` the broker would refuse.

    ``room`` is how many levels of containers may still open. Exact types are
    tested before any ``isinstance``: this runs for every record produced, and
    nearly every part of a value is one of them.
    """
    kind = type(value)
    if kind not in _EXACT_TYPES:
        kind = _base_type(value)
    if kind is str:
        if not value.isascii():
            _check_unicode(value, "string")
    elif kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise _NotStrict(f"integer {_INT_RANGE}")
    elif kind is float:
        if not math.isfinite(value):
            raise _NotStrict(f"{_constant_name(value)} is not valid JSON")
    elif kind is dict:
        if room < 1:
            raise _TooDeep("nested too deep")
        for key, item in value.items():
            if type(key) is not str:
                raise _NotStrict(f"object key {key!r} ({type(key).__name__}) is not a string")
            if not key.isascii():
                _check_unicode(key, "object key")
            try:
                _check(item, room - 1)
            except _NotStrict as exc:
                exc.steps.append(key)
                raise
    elif kind is list or kind is tuple:
        if room < 1:
            raise _TooDeep("nested too deep")
        for index, item in enumerate(value):
            try:
                _check(item, room - 1)
            except _NotStrict as exc:
                exc.steps.append(index)
                raise


def _base_type(value: Any) -> type:
    """The JSON type orjson writes a subclass as; :class:`_NotStrict` for other types."""
    for base in (str, int, dict, list):
        if isinstance(value, base):
            return base
    raise _NotStrict(f"{type(value).__name__} is not a JSON type")


def _check_unicode(text: str, what: str) -> None:
    # Only non-ASCII text gets here: encoding it is the one exact test for lone surrogates.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        lone = text[exc.start]
        raise _NotStrict(f"{what} holds the lone surrogate {lone!r}, not valid Unicode") from None


def _constant_name(value: float) -> str:
    """How JavaScript (and Python's ``json``) would write ``value``: NaN, Infinity, -Infinity."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise InvalidRequest(f"duplicate key {key!r} in JSON object")
        seen.add(key)
    return dict(pairs)


def _int_in_range(text: str) -> int:
    # The length test first: int() of thousands of digits is slow, and raises past 4300.
    value = int(text) if len(text) <= 21 else None
    if value is None or not INT_MIN <= value <= INT_MAX:
        raise InvalidRequest(f"integer {_INT_RANGE}")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidRequest("number too large for a double")
    return value


def _no_constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not valid JSON")
