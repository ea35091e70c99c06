"""``minimq consume`` on records whose bytes are not JSON (written as by a Kafka producer)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from minimq.cli.consume_command import BASE64_MARK, record_json, value_bytes_line
from minimq.client import Record
from tests.cli.test_client_commands import minimq, ok
from tests.support.binary_records import STORED, TOPIC, write_mixed_topic
from tests.support.processes import BrokerProcess


def test_value_bytes_print_as_text_or_marked_base64() -> None:
    assert value_bytes_line(b"plain text") == "plain text"
    assert value_bytes_line(b"\x00\xff") == BASE64_MARK + "AP8="


def test_record_json_is_the_api_shape() -> None:
    record = Record("t", 0, 1, 2, None, None, {"h": "v"}, b"\x00", b"\xff", {"b": b"\x01"})
    assert record_json(record) == {
        "topic": "t", "partition": 0, "offset": 1, "timestamp": 2,
        "key": None, "key_b64": "/w==", "value": None, "value_b64": "AA==",
        "headers": {"h": "v"}, "headers_b64": {"b": "AQ=="},
    }  # fmt: skip


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("consume-bytes") / "data"
    data.mkdir()
    write_mixed_topic(data)
    with BrokerProcess(data) as broker:
        yield broker.url


def test_consume_prints_every_record_readably(url: str) -> None:
    lines = ok(minimq("consume", TOPIC, "--broker-url", url)).splitlines()
    assert lines[0] == '{"a":1,"b":[true,null]}'
    assert lines[1] == "plain text, not JSON"
    assert lines[2] == BASE64_MARK + base64.b64encode(b"\x00\x01\x02\xff").decode()
    assert lines[3] == '1,"offset":999,"injected":true'  # text, not a record field
    assert lines[4] == "null"  # the tombstone
    assert lines[5] == ""  # the empty value
    assert len(lines) == len(STORED)


def test_consume_json_gives_back_every_byte(url: str) -> None:
    lines = ok(minimq("consume", TOPIC, "--broker-url", url, "--format", "json")).splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == len(STORED)
    for record, stored in zip(records, STORED, strict=True):
        if "value_b64" in record:
            assert base64.b64decode(record["value_b64"]) == stored.value
        if "key_b64" in record:
            assert base64.b64decode(record["key_b64"]) == stored.key
    assert records[2]["headers"] == {"ok": "v"}
    assert records[2]["headers_b64"] == {"bin": base64.b64encode(b"\xc3\x28").decode()}
