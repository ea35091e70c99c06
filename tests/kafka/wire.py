"""A bare Kafka wire client for tests: frames built with kio, sent over a plain socket.

Real clients never send what the wire tests need (garbage, oversized
prefixes, unauthenticated data requests, pipelined bursts), so these tests
talk to the broker's real Kafka port with hand-made frames.
"""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.request_header.v1.header import RequestHeader
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i32

CLIENT_ID = "minimq-wire-test"


def request_frame(api_key: int, version: int, correlation_id: int, **fields: Any) -> bytes:
    """A length-prefixed request: header v1 and the body of ``api_key`` v``version``."""
    buffer = io.BytesIO()
    entity_writer(RequestHeader)(
        buffer,
        RequestHeader(
            request_api_key=i16(api_key),
            request_api_version=i16(version),
            correlation_id=i32(correlation_id),
            client_id=CLIENT_ID,
        ),
    )
    request_type = load_request_schema(api_key, version)
    entity_writer(request_type)(buffer, request_type(**fields))
    body = buffer.getvalue()
    return struct.pack(">i", len(body)) + body


def raw_frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def head_only_frame(api_key: int, version: int, correlation_id: int) -> bytes:
    """A request with just the three fields every header version starts with, and no body."""
    return raw_frame(struct.pack(">hhi", api_key, version, correlation_id) + b"\xff\xff")


class WireClient:
    """One TCP connection to the Kafka port; ``recv_frame`` returns None once it is closed."""

    def __init__(self, bootstrap: str, timeout: float = 30.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exactly(self, size: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < size:
            try:
                chunk = self.sock.recv(size - len(chunks))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)

    def recv_frame(self) -> bytes | None:
        head = self.recv_exactly(4)
        if head is None:
            return None
        (size,) = struct.unpack(">i", head)
        return self.recv_exactly(size)

    def response(self, api_key: int, version: int) -> tuple[int, Any] | None:
        """(correlation id, decoded response) of the next frame, None if the broker closed."""
        frame = self.recv_frame()
        if frame is None:
            return None
        (correlation_id,) = struct.unpack_from(">i", frame)
        body, _ = entity_reader(load_response_schema(api_key, version))(frame, 4)
        return correlation_id, body

    def call(self, api_key: int, version: int, correlation_id: int = 1, **fields: Any) -> Any:
        self.send(request_frame(api_key, version, correlation_id, **fields))
        answer = self.response(api_key, version)
        assert answer is not None, f"broker closed the connection on API {api_key} v{version}"
        assert answer[0] == correlation_id
        return answer[1]

    def closed_by_peer(self) -> bool:
        """True when the broker closed the connection (EOF), without sending anything more."""
        return self.recv_frame() is None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
