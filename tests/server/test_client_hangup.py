"""A client that hangs up in the middle of its request body is bad input, not a broker fault,
and the connection is closed at once, not after the request timeout."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.processes import BrokerProcess


def test_hangup_mid_body_is_not_an_internal_error(broker: BrokerProcess) -> None:
    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.sendall(
            b"POST /v1/topics/hangup/records HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"records"'
        )
        time.sleep(0.3)
    answered = (
        "minimq_http_request_seconds_count"
        '{method="POST",route="/v1/topics/{topic}/records",status="400"} 1.0'
    )
    deadline = time.monotonic() + 5
    metrics = ""
    while time.monotonic() < deadline and answered not in metrics:
        metrics = httpx.get(f"{broker.url}/metrics").text
        time.sleep(0.05)
    assert answered in metrics
    assert "unexpected error" not in broker.log()
    assert httpx.get(f"{broker.url}/v1/topics/hangup").status_code == 404


def produce(topic: str, message: str) -> bytes:
    body = orjson.dumps({"topic": topic, "message": message})
    return (
        b"POST /produce HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


REQUEST_TIMEOUT_S = 30
# Far below the request timeout, and far above what closing takes even on a
# slow, loaded machine: waiting out the timeout fails, a prompt close passes.
CLOSED_WITHIN_S = 10


@pytest.mark.parametrize(
    ("before", "answers"),
    [
        pytest.param(b"", [[]], id="alone"),
        # Sent together, so the lane is still serving the first when the end arrives.
        pytest.param(produce("half-closed", "whole"), [[201]], id="after a lane request"),
        # aiohttp drops the answer when the end arrives before it is written.
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", [[], [200]], id="after an aiohttp request"
        ),
    ],
)
def test_half_close_mid_body_closes_promptly(
    data_dir: Path, before: bytes, answers: list[list[int]]
) -> None:
    """The client shuts its sending side inside a body: closed now, not at the request timeout."""
    truncated = produce("half-closed", "truncated")[:-5]
    with (
        BrokerProcess(data_dir, ["--request-timeout", str(REQUEST_TIMEOUT_S)]) as broker,
        socket.create_connection(("127.0.0.1", broker.port)) as sock,
    ):
        sock.sendall(before + truncated)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(CLOSED_WITHIN_S)
        received = b""
        while chunk := sock.recv(65536):  # raises TimeoutError if the broker keeps it open
            received += chunk
        statuses = [int(line.split()[1]) for line in re.findall(rb"HTTP/1\.1 \d+", received)]
        assert statuses in answers
        assert "unexpected error" not in broker.log()
        fetched = httpx.get(
            f"{broker.url}/v1/topics/half-closed/partitions/0/records", params={"offset": 0}
        )
        # No topic at all (404) unless the whole produce came first.
        stored = fetched.json()["records"] if fetched.status_code == 200 else []
        assert [record["value"] for record in stored] == (["whole"] if 201 in statuses else [])
