"""The value rule: record bytes in the HTTP API's JSON, never invalid, never lossy.

Unit tests of :mod:`minimq.server.value_rule`, then a real broker over a data
directory holding records no HTTP producer could have written (binary keys,
values and headers, tombstones, injection attempts), stored as a Kafka
client's batch and read back through every route that returns records;
every body is parsed by a strict JSON parser.

Values read from a client's batch are :class:`ClientBytes` and are checked;
plain ``bytes`` come from MiniMQ's own batches (values the HTTP API checked
before storing them) and are trusted, so the unit tests give stored client
values as ``ClientBytes``.
"""

from __future__ import annotations

import asyncio
import json
import random
from base64 import b64decode, b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from minimq.client import Client
from minimq.client import strict_json as client_strict_json
from minimq.core.records import ClientBytes, Record
from minimq.errors import InvalidRequest
from minimq.server import serialize, value_rule
from minimq.server.value_rule import VALUE_MAX_DEPTH, is_strict_json, value_texts
from minimq.storage import open_storage
from tests.support.binary_records import STORED, TOPIC, write_mixed_topic
from tests.support.processes import BrokerProcess

STRICT = [
    b'{"a":1}',
    b'"x"',
    b"0",
    b"-0",
    b"1E2",  # not what orjson writes, still JSON: verbatim
    b'  {"a" : [1.5, -2e-3]}\n',
    b"18446744073709551615",  # 2**64 - 1
    b"-9223372036854775808",  # -2**63
    b'"\\ud83d\\ude00 escaped pair, and a: colon"',
    b'{"a":{"a":1}}',  # the same key at two levels is no duplicate
    b"[" * VALUE_MAX_DEPTH + b"]" * VALUE_MAX_DEPTH,
    b'"caf\xc3\xa9"',
    b"true",
    b"null",
]
NOT_STRICT = [
    b"",
    b" ",
    b"NaN",
    b"Infinity",
    b"[-Infinity]",
    b"1e400",
    b"18446744073709551616",  # 2**64
    b"-9223372036854775809",  # -2**63 - 1
    b'{"a":1,"a":2}',
    b'[{"x":{"a":1,"b":2,"a":3}}]',
    b'{"a":1}x',
    b"1 2",
    b'{"a":1},{"b":2}',
    b'"\xff"',
    b'"\xed\xa0\x80"',  # a surrogate encoded as UTF-8
    b'"\\ud800"',  # a lone surrogate escape
    b"\xef\xbb\xbf{}",  # byte order mark
    b'"a\nb"',  # raw control character in a string
    b"{'a': 1}",
    b"hello",
    b"\x00\x01",
    b"[" * (VALUE_MAX_DEPTH + 1) + b"]" * (VALUE_MAX_DEPTH + 1),
    b"[" * 300 + b"]" * 300,  # past orjson's own writing limit
]


@pytest.mark.parametrize("raw", STRICT)
def test_strict_json_is_json(raw: bytes) -> None:
    assert is_strict_json(raw)
    stored = ClientBytes(raw)
    assert value_texts([stored])[0] is stored  # verbatim, not re-encoded


@pytest.mark.parametrize("raw", NOT_STRICT)
def test_anything_else_is_base64(raw: bytes) -> None:
    assert not is_strict_json(raw)
    text = value_texts([ClientBytes(raw)])[0]
    fields = orjson.loads(b'{"value":' + text + b"}")
    assert fields["value"] is None
    assert b64decode(fields["value_b64"], validate=True) == raw


@pytest.mark.parametrize("raw", STRICT + NOT_STRICT)
def test_the_verdict_is_the_clients_strict_json_rule(raw: bytes) -> None:
    """The broker's verdict on a stored value equals the client's on a value to produce."""
    try:
        client_strict_json.loads(raw.decode("utf-8"), max_depth=VALUE_MAX_DEPTH)
        client_accepts = True
    except (UnicodeDecodeError, InvalidRequest):
        client_accepts = False
    assert is_strict_json(raw) is client_accepts


def test_a_page_of_json_is_passed_through_as_it_is() -> None:
    for raw_page in (
        [orjson.dumps("x" * 100)] * 50,
        [orjson.dumps({"n": i, "f": i / 3, "l": [i, None]}) for i in range(50)],
        [b"1", b'"s"', b"[1.5]", b'{"a":1}'],
    ):
        page = [ClientBytes(raw) for raw in raw_page]
        assert value_texts(page) is page


def test_values_of_minimqs_own_batches_are_trusted_without_parsing() -> None:
    """Plain ``bytes`` come only from batches the HTTP API wrote, whose values it
    checked before storing them: they go out as they are, not parsed again. So
    even text that is not JSON passes here (storage never gives such bytes as
    plain ``bytes``: a Kafka client's values are :class:`ClientBytes`)."""
    own = [b'{"a":1}', b"not JSON, but trusted", b'{"a":1,"a":2}']
    assert value_texts(own) is own
    assert value_rule.value_text(own[1]) is own[1]
    assert orjson.dumps(value_rule.message_fields(own[1])["message"]) == own[1]
    # In a page that also holds a client's values, only those are checked.
    client = ClientBytes(b"not JSON")
    assert list(value_texts([own[1], client, None])) == [
        own[1],
        b'null,"value_b64":"' + b64encode(client) + b'"',
        b"null",
    ]
    assert list(value_texts([own[0], ClientBytes(b"[1]")])) == [own[0], b"[1]"]


def test_one_bad_value_in_a_page_is_the_only_one_changed() -> None:
    for raw_bad in (b"\x00", b'{"a":1,"a":2}', b"18446744073709551616", None):
        bad = None if raw_bad is None else ClientBytes(raw_bad)
        for raw_page in ([b'"a"', bad, b'"b"'], [b'{"a":1}', bad, b"[2]"], [bad, b"1", b'"s"']):
            page = [raw if raw is bad else ClientBytes(raw) for raw in raw_page]
            texts = value_texts(page)
            expected = b"null" if bad is None else b'null,"value_b64":"' + b64encode(bad) + b'"'
            assert list(texts) == [expected if raw is bad else raw for raw in page]


def _strict_loads(body: bytes | str) -> Any:
    """A strict JSON parser other than the broker's own: no duplicates, no NaN."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        assert len({k for k, _ in pairs}) == len(pairs), f"duplicate key in {pairs}"
        return dict(pairs)

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in JSON")

    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return json.loads(text, object_pairs_hook=unique, parse_constant=refuse)


def test_random_bytes_always_give_valid_json_that_round_trips() -> None:
    chooser = random.Random(13)
    alphabet = b'{}[]",:0123456789.eE+-tnulfase \\\n\x00\xff\xc3\xa9'
    for _ in range(2000):
        raw = bytes(chooser.choice(alphabet) for _ in range(chooser.randrange(0, 12)))
        key = bytes(chooser.randrange(256) for _ in range(chooser.randrange(0, 4)))
        header = bytes(chooser.randrange(256) for _ in range(chooser.randrange(0, 4)))
        record = Record(1, 2, key, ClientBytes(raw), (("h", header),))
        (text,) = serialize.record_texts("t", [(0, record)])
        parsed = _strict_loads(text)
        assert set(parsed) <= {"topic", "partition", "offset", "timestamp", "key", "key_b64",
                               "value", "value_b64", "headers", "headers_b64"}  # fmt: skip
        assert parsed["offset"] == 1
        _assert_bytes_kept(parsed, key, raw, {"h": header})


def _assert_bytes_kept(
    parsed: dict[str, Any], key: bytes | None, value: bytes | None, headers: dict[str, bytes]
) -> None:
    """``parsed`` (a Record object) gives back exactly ``key``, ``value`` and ``headers``."""
    if "key_b64" in parsed:
        assert parsed["key"] is None
        assert b64decode(parsed["key_b64"], validate=True) == key
    else:
        assert parsed["key"] == (None if key is None else key.decode("utf-8"))
    if "value_b64" in parsed:
        assert parsed["value"] is None
        assert b64decode(parsed["value_b64"], validate=True) == value
    elif value is None:
        assert parsed["value"] is None
    else:
        assert parsed["value"] == _strict_loads(value)
    binary = {n: b64decode(v, validate=True) for n, v in parsed.get("headers_b64", {}).items()}
    text = {n: v.encode("utf-8") for n, v in parsed["headers"].items()}
    assert not set(binary) & set(text)
    assert {**text, **binary} == headers


def test_keys_and_headers_that_are_not_utf8_are_base64() -> None:
    record = Record(0, 1, b"\xff", b"1", (("t", b"caf\xc3\xa9"), ("b", b"\xc3\x28")))
    (text,) = serialize.record_texts("t", [(0, record)])
    parsed = _strict_loads(text)
    assert parsed["key"] is None and parsed["key_b64"] == "/w=="
    assert parsed["headers"] == {"t": "café"}
    assert parsed["headers_b64"] == {"b": "wyg="}


def test_http_shaped_records_are_written_as_before_the_rule() -> None:
    record = Record(3, 4, b"k", b'{"a":1}', (("h", b"v"),))
    assert serialize.record_texts("t", [(0, record)]) == [
        b'{"topic":"t","partition":0,"offset":3,"timestamp":4,"key":"k","value":{"a":1},'
        b'"headers":{"h":"v"}}'
    ]


def test_consume_message_follows_the_rule() -> None:
    assert value_rule.message_fields(None) == {"message": None}
    assert value_rule.message_fields(ClientBytes(b"\x01")) == {
        "message": None,
        "message_b64": "AQ==",
    }
    fragment = value_rule.message_fields(ClientBytes(b'{"a":1}'))["message"]
    assert orjson.dumps(fragment) == b'{"a":1}'


# A real broker over records written straight into its data directory.


@pytest.fixture(scope="module")
def mixed_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("values") / "data"
    data.mkdir()
    write_mixed_topic(data)
    with BrokerProcess(data) as process:
        yield process


def _check_records(records: list[dict[str, Any]]) -> None:
    assert [r["offset"] for r in records] == list(range(len(STORED)))
    for parsed, stored in zip(records, STORED, strict=True):
        assert parsed["topic"] == TOPIC and parsed["partition"] == 0
        assert ("value_b64" not in parsed) is (stored.value_is_json or stored.value is None)
        _assert_bytes_kept(parsed, stored.key, stored.value, dict(stored.headers))


def test_fetch_follows_the_rule(mixed_broker: BrokerProcess) -> None:
    response = httpx.get(
        f"{mixed_broker.url}/v1/topics/{TOPIC}/partitions/0/records",
        params={"offset": "0", "limit": "100"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = _strict_loads(response.content)
    _check_records(body["records"])
    assert body["next_offset"] == len(STORED)


def test_group_fetch_follows_the_rule(mixed_broker: BrokerProcess) -> None:
    response = httpx.get(
        f"{mixed_broker.url}/v1/groups/values-group/topics/{TOPIC}/records",
        params={"limit": "100"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    _check_records(_strict_loads(response.content)["records"])


def test_consume_follows_the_rule(mixed_broker: BrokerProcess) -> None:
    for stored in STORED:
        response = httpx.get(
            f"{mixed_broker.url}/consume",
            params={"topic": TOPIC, "consumer_id": "values-consumer"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        message = _strict_loads(response.content)
        if stored.value_is_json:
            assert set(message) == {"message", "offset", "partition"}
            assert message["message"] == _strict_loads(stored.value or b"")
        elif stored.value is None:
            assert message == {"message": None, "offset": message["offset"], "partition": 0}
        else:
            assert message["message"] is None
            assert b64decode(message["message_b64"], validate=True) == stored.value


def test_stream_follows_the_rule(mixed_broker: BrokerProcess) -> None:
    records: list[dict[str, Any]] = []
    with httpx.stream(
        "GET",
        f"{mixed_broker.url}/v1/topics/{TOPIC}/stream",
        params={"from": "earliest", "partition": "0"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            assert not line or line.startswith((":", "event: ", "id: ", "data: ")), line
            if line.startswith("data: "):
                records.append(_strict_loads(line[len("data: ") :]))
                if len(records) == len(STORED):
                    break
    _check_records(records)


def test_the_python_client_gives_bytes_for_base64(mixed_broker: BrokerProcess) -> None:
    with Client(mixed_broker.url) as client:
        records = client.fetch(TOPIC, 0, offset="earliest", limit=100).records
    assert len(records) == len(STORED)
    for record, stored in zip(records, STORED, strict=True):
        if stored.value_is_json:
            assert record.value_bytes is None
            assert record.value == _strict_loads(stored.value or b"")
        elif stored.value is None:
            assert record.value is None and record.value_bytes is None
        else:
            assert record.value is None and record.value_bytes == stored.value
        key_is_text = stored.key is None or _is_utf8(stored.key)
        assert record.key_bytes == (None if key_is_text else stored.key)
        text = {n: v.encode() for n, v in record.headers.items()}
        assert {**text, **record.headers_bytes} == dict(stored.headers)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_data_dir_helper_wrote_what_it_says(tmp_path: Path) -> None:
    """The fixture's premise: the stored bytes are exactly :data:`STORED` (no JSON rewrite)."""
    data = tmp_path / "data"
    data.mkdir()
    write_mixed_topic(data)

    async def read() -> list[Record]:
        storage = await open_storage(data)
        try:
            return list(await storage.logs.partition(TOPIC, 0).read(0, 100, 1 << 20))
        finally:
            await storage.close()

    stored = asyncio.run(read())
    assert [(r.key, r.value) for r in stored] == [(s.key, s.value) for s in STORED]
    # Stored as a client's batch, so the broker checks every value.
    assert {type(r.value) for r in stored} == {ClientBytes, type(None)}
