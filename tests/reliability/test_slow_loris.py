"""Slow-loris: trickling connections neither starve normal clients nor exceed the limit."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from minimq.server.connection_limit import REFUSAL_BUDGET
from tests.reliability.conftest import FULL, scale
from tests.support.processes import BrokerProcess

SLOW = 200
TRICKLE_INTERVAL_S = 0.5


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def produce_latencies(url: str, count: int) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(count):
            started = time.perf_counter()
            response = client.post("/v1/topics/normal/records", json={"records": [{"value": i}]})
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return latencies


@contextmanager
def trickling(port: int, count: int, *, body: bool) -> Iterator[list[socket.socket]]:
    """``count`` connections sending one byte every TRICKLE_INTERVAL_S: of headers, or of a body."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = b"POST /v1/topics/slow/records HTTP/1.1\r\nHost: x\r\n"
        if body:
            head += b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        sock.sendall(head)
        sockets.append(sock)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(TRICKLE_INTERVAL_S):
            for sock in sockets:
                # The broker may close a slow connection: that is allowed.
                with contextlib.suppress(OSError):
                    sock.send(b" " if body else b"X")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        thread.join()
        for sock in sockets:
            sock.close()


def test_trickling_connections_do_not_starve_normal_clients(data_dir: Path) -> None:
    requests = scale(200, 1000)
    with BrokerProcess(data_dir, ["--log-level", "WARNING"]) as broker:
        produce_latencies(broker.url, 50)  # warm up
        unloaded = produce_latencies(broker.url, requests)
        with (
            trickling(broker.port, SLOW // 2, body=False),
            trickling(broker.port, SLOW // 2, body=True),
        ):
            time.sleep(1)
            loaded = produce_latencies(broker.url, requests)
    print(
        f"produce p99 unloaded {p99(unloaded) * 1000:.2f} ms, "
        f"with {SLOW} trickling connections {p99(loaded) * 1000:.2f} ms"
    )
    if FULL:
        assert p99(loaded) < 2 * p99(unloaded)


def test_connections_beyond_the_limit_get_503(data_dir: Path) -> None:
    limit = 20
    # No reserve: every connection counts against one share, as before there was one.
    args = ["--max-connections", str(limit), "--reserved-connections", "0"]
    with BrokerProcess(data_dir, args) as broker:
        with trickling(broker.port, limit, body=True):
            time.sleep(0.5)
            refused = httpx.post(
                f"{broker.url}/v1/topics/t/records", json={"records": [{"value": 1}]}, timeout=10
            )
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "TOO_MANY_CONNECTIONS"
        time.sleep(1)  # the broker notices the closed connections
        # Connections that never finish their head hold nothing anyone waits for:
        # a new connection takes the place of the oldest
        # (tests/reliability/test_idle_connections.py).
        with trickling(broker.port, limit, body=False):
            time.sleep(0.5)
            served = httpx.post(
                f"{broker.url}/v1/topics/t/records", json={"records": [{"value": 1}]}, timeout=10
            )
            assert served.status_code == 200, served.text
        time.sleep(0.5)
        accepted = httpx.post(f"{broker.url}/v1/topics/t/records", json={"records": [{"value": 1}]})
        assert accepted.status_code == 200


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
# Descriptors the broker may open meanwhile for reasons of its own.
FD_SLACK = 4


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fds(pid: int) -> int:
    """The broker's descriptor count once two readings 0.2 s apart agree."""
    last = open_fds(pid)
    for _ in range(50):
        time.sleep(0.2)
        now = open_fds(pid)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the broker's descriptor count never settled (last {last})")


def fds_drop_to(pid: int, bound: int, within_s: float = 10.0) -> bool:
    """Whether the broker's descriptor count falls to ``bound`` within ``within_s``."""
    deadline = time.monotonic() + within_s
    while open_fds(pid) > bound:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def first_answer(sock: socket.socket) -> str:
    """The status code of the first answer on ``sock``, "closed" or "reset"."""
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return "reset"
    return data.split(b" ", 2)[1].decode() if data else "closed"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_refused_connections_hold_a_bounded_number_of_descriptors(data_dir: Path) -> None:
    """600 clients against a limit of 10: refusals included, the broker's sockets stay bounded."""
    limit, clients = 10, 600
    args = ["--max-connections", str(limit), "--reserved-connections", "0"]
    with BrokerProcess(data_dir, args) as broker:
        assert broker.process is not None
        pid = broker.process.pid
        baseline = settled_fds(pid)
        sockets = []
        try:
            for _ in range(clients):
                sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
                sock.sendall(HEALTHZ)
                sockets.append(sock)
            # Every connection is answered (or, beyond the refusal budget, maybe just
            # closed) once the broker has accepted it; after the last, no refusal is
            # waiting to be accepted, and the clients keep all of theirs open.
            answers = [first_answer(sock) for sock in sockets]
            held = open_fds(pid)
            assert answers.count("200") == limit
            assert answers.count("503") >= REFUSAL_BUDGET
            assert set(answers) <= {"200", "503", "closed", "reset"}
            assert held <= baseline + limit + REFUSAL_BUDGET + FD_SLACK, (baseline, held)
            # And refusals do not linger long: soon only the admitted connections are left.
            assert fds_drop_to(pid, baseline + limit + FD_SLACK)
        finally:
            for sock in sockets:
                sock.close()
        assert fds_drop_to(pid, baseline + FD_SLACK)  # the admitted ones are closed too
        accepted = httpx.post(f"{broker.url}/v1/topics/t/records", json={"records": [{"value": 1}]})
        assert accepted.status_code == 200
