"""Encoded request bodies: a body that matches its Content-Encoding is stored, one that
does not is a JSON 400, never a 500 with a traceback in the log."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import BrokerProcess


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("encoding") / "data"
    data.mkdir()
    with BrokerProcess(data) as process:
        yield process


BODY = b'{"records": [{"value": {"n": 1}}]}'


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("gzip", gzip.compress(BODY)), ("deflate", zlib.compress(BODY))],
)
def test_a_matching_encoded_body_is_stored(
    broker: BrokerProcess, encoding: str, body: bytes
) -> None:
    answer = httpx.post(
        f"{broker.url}/v1/topics/encoded/records",
        content=body,
        headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", ["/v1/topics/encoded/records", "/produce"])
def test_a_body_that_does_not_match_its_encoding_is_400(broker: BrokerProcess, path: str) -> None:
    log: Path = broker.log_path
    before = log.read_text(errors="replace").count("Traceback")
    answer = httpx.post(
        f"{broker.url}{path}",
        content=b'{"topic": "encoded", "message": 1}',
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "INVALID_REQUEST"
    assert log.read_text(errors="replace").count("Traceback") == before, "a traceback was logged"
    assert httpx.get(f"{broker.url}/healthz").status_code == 200
