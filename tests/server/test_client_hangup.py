"""A client that hangs up in the middle of its request body is bad input, not a broker fault."""

from __future__ import annotations

import socket
import time

import httpx

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
