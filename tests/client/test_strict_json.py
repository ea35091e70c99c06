"""The client's strict JSON rule (``minimq.client.strict_json``) gives the broker's verdicts."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import json
import math
import urllib.error
import urllib.request
import uuid
from typing import Any

import orjson
import pytest

from minimq.client import Client, strict_json
from minimq.errors import InvalidRequest
from minimq.server import strict_json as broker_strict_json
from tests.support.processes import BrokerProcess


def nested(depth: int) -> Any:
    """``depth`` lists, one inside the other."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_text(depth: int) -> str:
    return "[" * depth + "]" * depth


TEXTS = [
    "1",
    " 1 ",
    "-0",
    "0.1",
    "1E5",
    "1e-400",
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    '{"v": NaN}',
    '{"v": 1, "v": 2}',
    '{"a": {"a": 1}, "b": {"a": 2}}',
    '"a:b"',
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "12345678901234567890123",
    '{"n": 12345678901234567890123}',
    "123456789012345678901234567890.5",
    "1" * 5000,
    '"\\ud800"',
    '{"\\udfff": 1}',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    '"\x01"',
    "\ufeff1",
    "{oops",
    "[1,]",
    "tru",
    "",
    nested_text(strict_json.MAX_DEPTH),
    nested_text(strict_json.MAX_DEPTH + 1),
    nested_text(5000),
]


def broker_verdict(text: str) -> tuple[bool, Any]:
    try:
        return True, broker_strict_json.loads(text.encode("utf-8", "surrogatepass"))
    except InvalidRequest:
        return False, None


def client_verdict(text: str) -> tuple[bool, Any]:
    try:
        return True, strict_json.loads(text, max_depth=strict_json.MAX_DEPTH)
    except InvalidRequest:
        return False, None


@pytest.mark.parametrize("text", TEXTS, ids=lambda t: repr(t)[:40])
def test_text_verdicts_match_the_broker(text: str) -> None:
    assert client_verdict(text) == broker_verdict(text)


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


Pair = collections.namedtuple("Pair", "a b")

ACCEPTED = [
    None,
    True,
    0,
    2**64 - 1,
    -(2**63),
    1.5,
    -0.0,
    "",
    "é ✓ 😀",
    [1, "a", None],
    (1, 2),
    {"a": {"b": [1.5, None]}},
    collections.OrderedDict(a=1),
    Level.HIGH,
    nested(strict_json.VALUE_MAX_DEPTH),
]

REFUSED = [
    (2**64, "value: integer outside the 64-bit range"),
    (10**23, "value: integer outside the 64-bit range"),
    (-(2**63) - 1, "value: integer outside the 64-bit range"),
    (math.nan, "value: NaN is not valid JSON"),
    (math.inf, "value: Infinity is not valid JSON"),
    ({"readings": [1.0, -math.inf]}, "value['readings'][1]: -Infinity is not valid JSON"),
    ({1: "a"}, "value: object key 1 (int) is not a string"),
    ({"a": {None: 1}}, "value['a']: object key None (NoneType) is not a string"),
    ("\ud800", "value: string holds the lone surrogate '\\ud800'"),
    ({"k\udfff": 1}, "value: object key holds the lone surrogate '\\udfff'"),
    ({1, 2}, "value: set is not a JSON type"),
    (b"raw", "value: bytes is not a JSON type"),
    (datetime.date(2024, 1, 1), "value: date is not a JSON type"),
    (uuid.UUID(int=1), "value: UUID is not a JSON type"),
    (decimal.Decimal("1.5"), "value: Decimal is not a JSON type"),
    (Colour.RED, "value: Colour is not a JSON type"),
    (Pair(1, 2), "value: Pair is not a JSON type"),
    (nested(strict_json.VALUE_MAX_DEPTH + 1), "value: nested deeper than 61 levels"),
]


@pytest.mark.parametrize("value", ACCEPTED, ids=lambda v: repr(v)[:40])
def test_accepted_values_reach_the_broker_unchanged(value: Any) -> None:
    strict_json.check(value)
    body = orjson.dumps({"records": [{"value": value}]})
    assert broker_strict_json.loads(body)["records"][0]["value"] == json.loads(json.dumps(value))


@pytest.mark.parametrize(("value", "message"), REFUSED, ids=lambda v: repr(v)[:40])
def test_refused_values_name_the_problem(value: Any, message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        strict_json.check(value)
    assert refused.value.message.startswith(message)


def test_a_circular_value_is_refused_as_too_deep() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidRequest, match="nested deeper than"):
        strict_json.check(loop)


def test_the_deepest_value_is_stored_and_one_level_more_is_what_the_broker_refuses(
    shared_broker: BrokerProcess,
) -> None:
    deepest = nested(strict_json.VALUE_MAX_DEPTH)
    with Client(shared_broker.url) as client:
        stored = client.produce("strict-depth", deepest)
        assert client.fetch("strict-depth", 0, offset=stored.offset).records[0].value == deepest
        with pytest.raises(InvalidRequest, match="nested deeper than"):
            client.produce("strict-depth", [deepest])
    # The same record sent without the client's check: the broker's own 400.
    body = orjson.dumps({"records": [{"value": [deepest]}]})
    request = urllib.request.Request(
        f"{shared_broker.url}/v1/topics/strict-depth/records",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    with refused.value as answer:
        assert answer.code == 400
        assert b"nested deeper than 64 levels" in answer.read()
