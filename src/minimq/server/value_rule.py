"""The value rule: how a record's stored bytes appear in the HTTP API's JSON.

A record's key, value and header values are bytes. Over HTTP they were
produced as JSON, but over Kafka they are whatever the producer sent (Avro,
Protobuf, plain text), so the JSON the broker writes must never paste bytes
that are not JSON, nor lose any. One rule, applied here for every answer
that holds records (fetch, group fetch, ``GET /consume``, the SSE stream):

- **value**: bytes that are strict JSON go out verbatim as ``"value"``.
  Strict is the rule a produce request's value must pass
  (:mod:`minimq.server.strict_json`): valid UTF-8, no NaN or Infinity, no
  duplicate keys, integers within 64 bits, numbers within a double, at most
  :data:`VALUE_MAX_DEPTH` levels. So a value the HTTP API accepted comes
  back as the same JSON. A null value (a Kafka tombstone) is
  ``"value": null``. Any other bytes (the empty value too) are
  ``"value": null, "value_b64": "<base64>"``: old readers see a null value,
  new ones test for ``value_b64``.
- **key**: UTF-8 text is ``"key": "<text>"``, a null key ``"key": null``,
  other bytes ``"key": null, "key_b64": "<base64>"``.
- **header values**: UTF-8 text (or null) in ``"headers"``; the others
  only in ``"headers_b64": {"<name>": "<base64>"}``, present when needed.

Base64 is RFC 4648's standard alphabet with padding. The ``*_b64`` fields
are left out when not needed, so a record produced over HTTP is written
byte for byte as before the rule.

Which values are checked. Only a Kafka client's: storage reads them back
as :class:`~minimq.core.records.ClientBytes`, and values of MiniMQ's own
batches as plain ``bytes`` (the batch's origin is marked on disk, see
:mod:`minimq.recordbatch.frames`). Own batches hold only values the HTTP API
accepted: ``orjson.dumps`` of a request's strictly parsed JSON, which is
strict JSON by construction, so they are trusted and go out as they are
(the same text the check would have passed). A page is therefore sorted by
one type scan in C (``set(map(type, values))``), and a page of a client's
values is checked as below. Trusting a value that is not JSON would break
the answer, so whatever appends to a partition through ``append`` (not the
raw ``append_batches``) must hold strict JSON values: in the broker that is
``Broker.produce``, called only by the HTTP produce routes (and the produce
lane, which shares them). One difference from checking: ``POST /produce``
takes a ``message`` nested up to 63 levels (it sits one level into its body,
not three), which is then written as JSON too, not as ``value_b64``; still
valid and lossless, though such an answer nests up to 66 levels.

The check sits on the fetch path, where a record costs about a microsecond
in all, so it runs over a whole page in C loops: one ``orjson.loads`` per
value and a type test. A page of strings, integers, booleans and nulls
passes without more (orjson refuses what strict JSON refuses there). A page
with floats, objects or arrays must also come back byte for byte from
``orjson.dumps``: canonical text has no duplicate key and no integer turned
into a float, and text shorter than :data:`_SHALLOW_BYTES` cannot nest too
deep (longer text counts its brackets). Anything else gets the exact check
of :mod:`minimq.server.strict_json`. The cost, measured: one
``orjson.loads`` per value, about 0.13 µs for a 100-byte string (+8-17 % of
the broker's CPU per record on a fetch of 100-byte JSON values, which the
type scan, about 0.02 µs a value, saves for MiniMQ's own batches).
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Sequence
from operator import eq
from typing import cast

import orjson

from minimq.core.records import Header
from minimq.errors import InvalidRequest
from minimq.server import strict_json

# A value sits three levels into a produce body ({"records": [{"value": ...}]}).
VALUE_MAX_DEPTH = strict_json.MAX_DEPTH - 3
# Each level of nesting takes two bytes, so shorter text is never too deep.
_SHALLOW_BYTES = 2 * (VALUE_MAX_DEPTH + 1)
# orjson.loads gives these only for text strict JSON accepts: it refuses
# invalid UTF-8, lone surrogates and control characters in strings, and
# returns an integer only within 64 bits (a float beyond).
_ALWAYS_STRICT = frozenset({str, int, bool, type(None)})
# The value type of MiniMQ's own batches (not ClientBytes), trusted as it is.
_OWN_KINDS = frozenset({bytes})
_NULL = b"null"


def is_strict_json(raw: bytes) -> bool:
    """Whether ``raw`` is strict JSON, as a produce request's value must be."""
    raw = bytes(raw)  # orjson takes exact bytes only: a ClientBytes is copied
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if type(parsed) in _ALWAYS_STRICT:
        return True
    if _dumps_or_none(parsed) == raw and _shallow(raw):
        return True
    try:
        strict_json.loads(raw, max_depth=VALUE_MAX_DEPTH)
    except InvalidRequest:
        return False
    return True


def value_texts(values: Sequence[bytes | None]) -> Sequence[bytes]:
    """What follows ``"value":`` in each record's JSON, for a page of values.

    The value itself when it is MiniMQ's own (plain ``bytes``, trusted) or
    strict JSON (the very object, not a copy), ``null`` for a null value,
    else ``null,"value_b64":"..."``. Returns ``values`` itself when every
    value is one of the former, the common case.
    """
    kinds = set(map(type, values))
    if kinds <= _OWN_KINDS:
        return values  # type: ignore[return-value]  # plain bytes only, no None
    if _page_is_strict(values):
        return values  # type: ignore[return-value]  # no None: loads would have raised
    return [_value_text(value) for value in values]


def _page_is_strict(values: Sequence[bytes | None]) -> bool:
    """True when the fast checks alone show every value strict; False: look at each.

    Each parse is dropped as soon as it is looked at (``map`` over ``map``):
    holding a page of parsed values, or of ``orjson.dumps`` results, costs
    more in fresh memory than the parsing itself (measured 2.5 µs a value
    against 0.15 µs for a page of 10,000 objects).
    """
    loads = orjson.loads
    # A None among them makes bytes() raise TypeError: then each is looked at.
    texts = cast("Sequence[bytes]", values)
    try:
        # bytes(): orjson takes exact bytes only, so a ClientBytes is copied.
        if (
            texts[0][:1] not in b"{["
            and set(map(type, map(loads, map(bytes, texts)))) <= _ALWAYS_STRICT
        ):
            return True
        return max(map(len, texts)) < _SHALLOW_BYTES and all(
            map(eq, map(orjson.dumps, map(loads, map(bytes, texts))), texts)
        )
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError):
        # A value that is not JSON, or a null one (TypeError).
        return False


def value_text(value: bytes | None) -> bytes:
    """What follows ``"value":`` for one value; see :func:`value_texts`."""
    return _value_text(value)


def key_text(key: bytes) -> bytes:
    """What follows ``"key":`` for a key that is not null."""
    try:
        return orjson.dumps(key.decode("utf-8"))
    except UnicodeDecodeError:
        return b'null,"key_b64":"%b"' % b64encode(key)


def headers_text(headers: Sequence[Header]) -> bytes:
    """What follows ``"headers":`` for a record's headers (not none).

    A repeated name keeps its last value, as a JSON object can hold a name once.
    """
    texts: dict[str, str | None] = {}
    binary: dict[str, str] = {}
    for name, value in headers:
        if value is None:  # Kafka allows a null header value
            texts[name] = None
            binary.pop(name, None)
            continue
        try:
            texts[name] = value.decode("utf-8")
            binary.pop(name, None)
        except UnicodeDecodeError:
            binary[name] = b64encode(value).decode("ascii")
            texts.pop(name, None)
    if not binary:
        return orjson.dumps(texts)
    return orjson.dumps(texts) + b',"headers_b64":' + orjson.dumps(binary)


def message_fields(value: bytes | None) -> dict[str, object]:
    """``GET /consume``'s ``message`` (and ``message_b64``) by the same rule."""
    if value is None:
        return {"message": None}
    if type(value) is bytes or is_strict_json(value):
        return {"message": orjson.Fragment(bytes(value))}  # exact bytes, as for loads
    return {"message": None, "message_b64": b64encode(value).decode("ascii")}


def _value_text(value: bytes | None) -> bytes:
    if value is None:
        return _NULL
    if type(value) is bytes or is_strict_json(value):  # plain bytes: MiniMQ's own
        return value
    return b'null,"value_b64":"%b"' % b64encode(value)


def _shallow(raw: bytes) -> bool:
    """Whether ``raw`` surely nests no deeper than :data:`VALUE_MAX_DEPTH` levels.

    Each level opens with a bracket; brackets inside strings only make the
    count err on the safe side (the exact check then decides).
    """
    return len(raw) < _SHALLOW_BYTES or raw.count(b"[") + raw.count(b"{") <= VALUE_MAX_DEPTH


def _dumps_or_none(parsed: object) -> bytes | None:
    try:
        return orjson.dumps(parsed)
    except orjson.JSONEncodeError:
        return None
