"""Connection admission: per-address caps, the reserve, eviction of the unplaced, the file limit.

Real broker processes with small caps; every connection is a raw socket so
the test decides exactly what each one has sent. The flood sizes are in
``tests/reliability/test_idle_connections.py``.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from minimq.server.connection_limit import SILENT_GRACE_S
from tests.support.processes import BrokerProcess, free_port, wait_for_http

TOKEN = "admission-token"
AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def code(self) -> str | None:
        error = orjson.loads(self.body).get("error") if self.body else None
        return error["code"] if error else None


def read_answer(sock: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(lines[0].split()[1]), headers, body[:length])


@contextlib.contextmanager
def connections() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def connect(port: int, opened: list[socket.socket], source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    opened.append(sock)
    return sock


def request(target: str, method: str = "GET", auth: bool = False, body: bytes = b"") -> bytes:
    return (
        f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
        + (AUTH if auth else b"")
        + b"\r\n"
        + body
    )


def ask(sock: socket.socket, data: bytes) -> Answer:
    sock.sendall(data)
    return read_answer(sock)


def closed_by_broker(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


PRODUCE = request("/produce", "POST", body=b'{"topic": "t", "message": 1}')


def test_beyond_the_general_share_only_the_token_and_healthz_get_in(data_dir: Path) -> None:
    args = ["--token", TOKEN, "--max-connections", "8", "--reserved-connections", "4"]
    with BrokerProcess(data_dir, args) as broker, connections() as opened:
        # Four connections without the token fill the general share (8 - 4) and stay open.
        for _ in range(4):
            assert ask(connect(broker.port, opened), request("/v1/topics")).status == 401
        # A fifth is refused whichever way it comes in: aiohttp's routes, or the produce lane.
        for data in (request("/v1/topics"), PRODUCE):
            sock = connect(broker.port, opened)
            refused = ask(sock, data)
            assert (refused.status, refused.code) == (503, "TOO_MANY_CONNECTIONS"), refused.body
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["connection"] == "close"
            assert closed_by_broker(sock)
        # /healthz is answered, once: the reserve is not a place to park a connection.
        sock = connect(broker.port, opened)
        healthz = ask(sock, request("/healthz"))
        assert healthz.status == 200
        assert healthz.headers["connection"] == "close"
        assert closed_by_broker(sock)
        # The token gets in, on either way, and keeps its connection.
        authenticated_produce = PRODUCE.replace(b"\r\n\r\n", b"\r\n" + AUTH + b"\r\n", 1)
        for data in (request("/v1/topics", auth=True), authenticated_produce):
            sock = connect(broker.port, opened)
            assert ask(sock, data).status in (200, 201)
            assert ask(sock, request("/v1/topics", auth=True)).status == 200


def test_a_new_connection_takes_the_place_of_the_oldest_unfinished_one(data_dir: Path) -> None:
    args = ["--max-connections", "4", "--reserved-connections", "0"]
    with BrokerProcess(data_dir, args) as broker, connections() as opened:
        idle = [connect(broker.port, opened) for _ in range(4)]
        for sock in idle:
            sock.sendall(b"G")  # a head that never completes
        time.sleep(0.3)
        assert ask(connect(broker.port, opened), PRODUCE).status == 201
        evicted = read_answer(idle[0])
        assert (evicted.status, evicted.code) == (503, "TOO_MANY_CONNECTIONS")
        assert closed_by_broker(idle[0])
        # The others still wait (no answer yet): only the oldest made room.
        idle[1].settimeout(0.3)
        with pytest.raises(TimeoutError):
            idle[1].recv(1)


def test_one_address_is_capped_but_not_those_that_present_the_token(data_dir: Path) -> None:
    args = ["--token", TOKEN, "--max-connections-per-address", "3"]
    with BrokerProcess(data_dir, args) as broker, connections() as opened:
        for _ in range(3):
            assert ask(connect(broker.port, opened, "127.0.0.3"), request("/healthz")).status == 200
        refused = ask(connect(broker.port, opened, "127.0.0.3"), request("/healthz"))
        assert (refused.status, refused.code) == (503, "TOO_MANY_CONNECTIONS")
        assert b"client address" in refused.body
        # Another address is not affected.
        assert ask(connect(broker.port, opened, "127.0.0.4"), request("/healthz")).status == 200
        # Connections that presented the token leave their address's count.
        for _ in range(5):
            sock = connect(broker.port, opened, "127.0.0.5")
            assert ask(sock, request("/v1/topics", auth=True)).status == 200
        # And connections of an address at its cap that never finished a head make room.
        waiting = [connect(broker.port, opened, "127.0.0.6") for _ in range(3)]
        for sock in waiting:
            sock.sendall(b"G")
        time.sleep(0.3)
        assert ask(connect(broker.port, opened, "127.0.0.6"), request("/healthz")).status == 200
        assert read_answer(waiting[0]).status == 503


def test_the_broker_raises_its_soft_open_file_limit_to_the_hard_limit(data_dir: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.fail(f"needs a finite hard RLIMIT_NOFILE above 256 (it is {hard})")

    port = free_port()
    log_path = data_dir.parent / "broker.log"
    # The broker started as a shell would start it with `ulimit -Sn 256`.
    start = (
        "import resource, runpy, sys;"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}));"
        f"sys.argv = ['minimq', 'broker', '--port', '{port}', '--data-dir', {str(data_dir)!r}];"
        "runpy.run_module('minimq', run_name='__main__')"
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-c", start], stdout=log, stderr=log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=process)
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert line.split()[3:5] == [str(hard), str(hard)], line
        assert f"raised the open-file limit from 256 to {hard}" in log_path.read_text()
    finally:
        process.terminate()
        process.wait(10)


def test_silent_connections_make_room_only_once_they_have_been_silent_a_while(
    data_dir: Path,
) -> None:
    """A connection that has sent nothing may have its head unread yet: a grace period."""
    args = ["--max-connections", "4", "--reserved-connections", "0"]
    with BrokerProcess(data_dir, args) as broker, connections() as opened:
        silent = [connect(broker.port, opened) for _ in range(4)]
        time.sleep(0.2)
        refused = ask(connect(broker.port, opened), PRODUCE)
        assert (refused.status, refused.code) == (503, "TOO_MANY_CONNECTIONS")
        time.sleep(SILENT_GRACE_S + 0.5)
        assert ask(connect(broker.port, opened), PRODUCE).status == 201
        assert read_answer(silent[0]).status == 503
