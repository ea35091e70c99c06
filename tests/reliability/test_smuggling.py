"""Request-smuggling shapes over raw sockets: 400, the connection closed, nothing smuggled."""

from __future__ import annotations

import re
import socket

import orjson
import pytest

from tests.support.processes import BrokerProcess

HEAD = b"POST /v1/topics/smuggle/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
BODY = b'{"records":[{"value":1}]}'
SMUGGLED = b"GET /v1/topics HTTP/1.1\r\nHost: x\r\n\r\n"


def chunk(data: bytes, terminator: bytes = b"\r\n") -> bytes:
    return b"%x\r\n%s%s" % (len(data), data, terminator)


SHAPES = {
    "CL and TE": HEAD
    + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(BODY)
    + chunk(BODY)
    + b"0\r\n\r\n",
    "TE and CL": HEAD
    + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
    + chunk(BODY)
    + b"0\r\n\r\n",
    "duplicate CL, different": HEAD
    + b"Content-Length: %d\r\nContent-Length: 4\r\n\r\n" % len(BODY)
    + BODY,
    "duplicate CL, equal": HEAD
    + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(BODY), len(BODY))
    + BODY,
    "CL list": HEAD + b"Content-Length: %d, %d\r\n\r\n" % (len(BODY), len(BODY)) + BODY,
    "negative CL": HEAD + b"Content-Length: -1\r\n\r\n" + BODY,
    "chunk without CRLF": HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n"
    + chunk(BODY, b"XX")
    + b"0\r\n\r\n",
    "chunk with bare LF": HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n"
    + chunk(BODY, b"\n")
    + b"0\r\n\r\n",
    "bad chunk size": HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + BODY + b"\r\n0\r\n\r\n",
    "huge chunk size": HEAD
    + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n"
    + BODY
    + b"\r\n0\r\n\r\n",
    "TE not chunked last": HEAD
    + b"Transfer-Encoding: chunked, identity\r\n\r\n"
    + chunk(BODY)
    + b"0\r\n\r\n",
    "TE obfuscated": HEAD + b"Transfer-Encoding: xchunked\r\n\r\n" + chunk(BODY) + b"0\r\n\r\n",
    "space before colon": HEAD
    + b"Transfer-Encoding : chunked\r\n\r\n"
    + chunk(BODY)
    + b"0\r\n\r\n",
    "folded header": HEAD
    + b"Content-Length: %d\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" % len(BODY)
    + chunk(BODY)
    + b"0\r\n\r\n",
}


def exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload`` and read until the broker closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        reply = b""
        while data := sock.recv(65536):
            reply += data
    return reply


@pytest.mark.parametrize("shape", SHAPES)
def test_smuggling_shapes_get_400_and_a_closed_connection(
    shared_broker: BrokerProcess, shape: str
) -> None:
    reply = exchange(shared_broker.port, SHAPES[shape] + SMUGGLED)
    # aiohttp's parser answers framing errors itself (as HTTP/1.0), in our JSON shape.
    assert re.match(rb"HTTP/1\.[01] 400 ", reply), reply[:200]
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"\r\nContent-Type: application/json" in head, head
    error = orjson.loads(body)["error"]
    assert error["code"] == "BAD_HTTP_REQUEST"
    assert error["message"].startswith("malformed HTTP request: "), error
    # exchange() returned, so the broker closed the connection; nothing more was answered.
    assert len(re.findall(rb"HTTP/1\.[01] ", reply)) == 1, "the smuggled request was answered"


def test_a_well_formed_chunked_request_still_works(shared_broker: BrokerProcess) -> None:
    payload = HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    payload += chunk(BODY[:10]) + chunk(BODY[10:]) + b"0\r\n\r\n"
    assert exchange(shared_broker.port, payload).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    "payload",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP at all\r\n\r\n",
        b"GET /v1/topics HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /v1/topics HTTP/9.9\r\nHost: x\r\n\r\n",
    ],
    ids=["not HTTP", "header line too long", "unknown HTTP version"],
)
def test_malformed_http_gets_a_json_400_and_no_traceback(
    shared_broker: BrokerProcess, payload: bytes
) -> None:
    reply = exchange(shared_broker.port, payload)
    assert re.match(rb"HTTP/1\.[01] 400 ", reply), reply[:200]
    error = orjson.loads(reply.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "BAD_HTTP_REQUEST", error
    assert "Traceback" not in shared_broker.log()
