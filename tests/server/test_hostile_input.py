"""Hostile and malformed input always gets a JSON 4xx, never a 500 or a stray file."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")


@pytest.fixture(scope="module")
def names_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker that only ever sees bad topic names, so its topics dir must stay empty."""
    data = tmp_path_factory.mktemp("names") / "data"
    data.mkdir()
    with BrokerProcess(data) as broker:
        yield broker


BAD_TOPICS = ["../x", "..", ".", "%2e%2e", "a\x00b", "a\\b", "a/b", "t" * 250, "", "sp ace", "é"]


def files_outside(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.parent.rglob("*") if data_dir not in p.parents and p != data_dir]


@pytest.mark.parametrize("name", BAD_TOPICS)
def test_bad_topic_names_are_400_everywhere(names_broker: BrokerProcess, name: str) -> None:
    broker = names_broker
    before = set(files_outside(broker.data_dir))
    with httpx.Client(base_url=broker.url) as client:
        responses = [
            client.post("/produce", json={"topic": name, "message": 1}),
            client.post("/v1/topics", json={"name": name}),
            client.get("/consume", params={"topic": name, "consumer_id": "c"}),
            client.post(
                "/v1/groups/g/commit",
                json={"offsets": [{"topic": name, "partition": 0, "offset": 0}]},
            ),
        ]
        # Names a URL cannot carry verbatim are covered by the raw-socket test below.
        if name.isprintable() and name not in ("", ".", "..") and not set(name) & set("/\\"):
            responses.append(
                client.post(f"/v1/topics/{name}/records", json={"records": [{"value": 1}]})
            )
    for response in responses:
        assert response.status_code in (400, 404), response.text
        assert response.json()["error"]["code"] in (
            "INVALID_TOPIC_NAME",
            "INVALID_REQUEST",
            "NOT_FOUND",
        )
    assert set(files_outside(broker.data_dir)) - before <= {broker.log_path}
    topics_dir = broker.data_dir / "topics"
    created = [p.name for p in topics_dir.iterdir()] if topics_dir.exists() else []
    assert created == []


def test_encoded_traversal_in_the_path_is_rejected(broker: BrokerProcess) -> None:
    for raw in ["/v1/topics/%2e%2e/records", "/v1/topics/..%2fx/records", "/v1/topics/%00/records"]:
        with socket.create_connection(("127.0.0.1", broker.port)) as sock:
            body = b'{"records":[{"value":1}]}'
            sock.sendall(
                b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (raw.encode(), len(body), body)
            )
            reply = sock.makefile("rb").read()
        status = int(reply.split(b" ", 2)[1])
        assert status in (400, 404), reply
    assert not (broker.data_dir.parent / "x").exists()


MALFORMED = [
    b"[" * 1000 + b"]" * 1000,
    b'{"records": [{"value": ' + b"[" * 1000 + b"]" * 1000 + b"}]}",
    b'{"records": [{"value": ' + b"9" * 5000 + b"}]}",
    b'{"records": [{"value": NaN}]}',
    b'{"records": [{"value": Infinity}]}',
    b'{"records": [{"value": 1e999}]}',
    b'{"records": [{"value": 18446744073709551616}]}',
    b'{"records": [{"value": "\xff\xfe"}]}',
    b'{"records": [{"value": "\\ud800"}]}',
    b'{"records": [{"value": 1, "value": 2}]}',
    b'{"records": [{"value": 1}], "records": []}',
    b'{"records": {"value": 1}}',
    b'{"records": [1, 2]}',
    b'{"records": [{"value": 1, "key": 5}]}',
    b'{"records": [{"value": 1, "headers": {"h": 1}}]}',
    b'{"records": [{"value": 1, "partition": "0"}]}',
    b'{"records": [{"value": 1, "partition": true}]}',
    b'{"records": [{"value": 1, "timestamp": -1}]}',
    b'{"records": [{"key": "k"}]}',
    b'{"records": []}',
    b'{"records": [{"value": 1}], "extra": 1}',
    b'"just a string"',
    b"",
    b"{",
    b"\x00\x01\x02",
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_json_is_400(shared_broker: BrokerProcess, body: bytes) -> None:
    response = httpx.post(
        f"{shared_broker.url}/v1/topics/malformed/records",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


def test_oversized_content_length_is_413_before_reading(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with BrokerProcess(data, ["--max-body-bytes", "1000", "--max-record-bytes", "100"]) as broker:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(
                b"POST /produce HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000000\r\n\r\n"
            )
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 413"), reply
        assert b"REQUEST_TOO_LARGE" in reply

        def chunks() -> object:
            for _ in range(20):
                yield b" " * 100

        chunked = httpx.post(f"{broker.url}/produce", content=chunks())
        assert chunked.status_code == 413
        big = httpx.post(
            f"{broker.url}/v1/topics/big/records", json={"records": [{"value": "x" * 200}]}
        )
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "MESSAGE_TOO_LARGE"


def test_wrong_query_types_are_400(shared_broker: BrokerProcess) -> None:
    url = shared_broker.url
    httpx.post(f"{url}/v1/topics", json={"name": "queries"})
    base = f"{url}/v1/topics/queries/partitions/0/records"
    for params in [
        {"limit": "ten"},
        {"wait_ms": "-1"},
        {"wait_ms": "99999"},
        {"max_bytes": "1e3"},
        {"offset": "1", "timestamp": "2"},
    ]:
        assert httpx.get(base, params=params).status_code == 400, params
    assert httpx.get(f"{url}/v1/topics/queries/partitions/x/records").status_code == 400
    group = f"{url}/v1/groups/g/topics/queries/records"
    assert httpx.get(group, params={"commit": "maybe"}).status_code == 400
    assert httpx.get(group, params={"auto_offset_reset": "middle"}).status_code == 400


def test_auth_required_except_healthz(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with BrokerProcess(data, ["--token", "s3cret"]) as broker:
        url = broker.url
        assert httpx.get(f"{url}/healthz").status_code == 200
        for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}]:
            response = httpx.get(f"{url}/v1/topics", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "UNAUTHORIZED"
            assert (
                httpx.post(
                    f"{url}/produce", json={"topic": "t", "message": 1}, headers=headers
                ).status_code
                == 401
            )
        good = {"Authorization": "Bearer s3cret"}
        assert httpx.get(f"{url}/v1/topics", headers=good).status_code == 200
        assert httpx.get(f"{url}/metrics", headers=good).status_code == 200


def test_slow_body_gets_408(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with BrokerProcess(data, ["--request-timeout", "0.5"]) as broker:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(
                b"POST /produce HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 40\r\n\r\n{"topic":'
            )
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert b"REQUEST_TIMEOUT" in reply


def _answer(sock: socket.socket) -> tuple[list[bytes], bytes, bytes]:
    """Interim status lines, then the final head and body of one answer."""
    received, interim = b"", []
    while True:
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"closed before a complete answer: {received!r}"
            received += chunk
        head, received = received.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 1"):
            break
        interim.append(head)
    lines = head.lower().split(b"\r\n")
    length = next(int(line[15:]) for line in lines if line.startswith(b"content-length:"))
    while len(received) < length:
        received += sock.recv(65536)
    return interim, head, received[:length]


def _head(path: str, *lines: str, method: str = "POST") -> bytes:
    head = "".join(f"{line}\r\n" for line in (f"{method} {path} HTTP/1.1", "Host: x", *lines))
    return f"{head}\r\n".encode()


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/produce"), ("GET", "/v1/topics"), ("POST", "/no/such/route")],
)
def test_an_unknown_expectation_is_a_json_417(
    shared_broker: BrokerProcess, method: str, path: str
) -> None:
    with socket.create_connection(("127.0.0.1", shared_broker.port), timeout=10) as sock:
        sock.sendall(_head(path, "Expect: 200-ok", "Content-Length: 0", method=method))
        interim, head, body = _answer(sock)
    assert interim == []
    assert head.startswith(b"HTTP/1.1 417"), head
    assert b"Content-Type: application/json" in head
    assert orjson.loads(body)["error"]["code"] == "EXPECTATION_FAILED"


def test_100_continue_only_for_a_body_the_broker_will_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    good = "Authorization: Bearer s3cret"
    body = orjson.dumps({"topic": "expect", "message": 1})
    with BrokerProcess(data, ["--max-body-bytes", "1000", "--token", "s3cret"]) as broker:

        def refused(*lines: str) -> tuple[list[bytes], bytes, bytes]:
            with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
                # The head only: a client waiting for 100 Continue before its body.
                sock.sendall(_head("/produce", *lines, "Expect: 100-continue"))
                return _answer(sock)

        interim, head, answer = refused(good, "Content-Length: 100000")
        assert (interim, head[:12]) == ([], b"HTTP/1.1 413"), head
        assert orjson.loads(answer)["error"]["code"] == "REQUEST_TOO_LARGE"
        # Its body may never come: the connection cannot be read for a next request.
        assert b"Connection: close" in head
        interim, head, answer = refused(
            "Authorization: Bearer wrong", f"Content-Length: {len(body)}"
        )
        assert (interim, head[:12]) == ([], b"HTTP/1.1 401"), head

        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(
                _head("/produce", good, "Expect: 100-continue", f"Content-Length: {len(body)}")
            )
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
            interim, head, answer = _answer(sock)
        assert head.startswith(b"HTTP/1.1 201"), head
        assert orjson.loads(answer)["offset"] == 0
