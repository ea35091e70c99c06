"""Idle connections: thousands that never finish a request lock nobody out.

An attacker opens connections that each send one byte and never more, and
opens a new one whenever the broker closes one. Before the connection
admission rules (:mod:`minimq.server.connection_limit`) this held every other
client, ``/healthz`` included, at ``503 TOO_MANY_CONNECTIONS`` for as long as
the attacker kept reconnecting. Now ``/healthz`` and authenticated produces
on new connections are served throughout, and the broker's descriptors stay
bounded.

Reduced: 2,000 attacking connections; full (``MINIMQ_FULL_RELIABILITY=1``): 10,000.
The figures (time to serve each request during the attack) are printed; no
assertion is about speed, only that every request is served.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import multiprocessing.queues
import os
import queue
import resource
import selectors
import socket
import statistics
import time
from collections.abc import Iterator, Sequence
from multiprocessing import synchronize
from pathlib import Path
from typing import Any

import httpx
import pytest

from minimq.server.connection_limit import REFUSAL_BUDGET
from tests.reliability.conftest import scale
from tests.support.processes import BrokerProcess

ATTACK = scale(2_000, 10_000)
TOKEN = "idle-connections-token"
SAMPLES = 10
# Descriptors the broker may open meanwhile for reasons of its own.
FD_SLACK = 16


def raise_open_file_limit(needed: int) -> None:
    """Lift the soft RLIMIT_NOFILE to ``needed``; fail loudly if the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(
            f"this test opens {needed} sockets but the hard RLIMIT_NOFILE is {hard}:"
            " raise it (ulimit -Hn) to run it"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Flood:
    """``count`` connections that send one byte each; any the broker closes is opened again.

    Runs in a process of its own, so that its socket work does not slow the
    test's own client, whose times are the figures. The sockets are spread
    over ``sources`` (loopback addresses, all of which reach a broker bound to
    127.0.0.1 on Linux), round robin.
    """

    def __init__(self, port: int, count: int, sources: Sequence[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Event()
        self._stop = context.Event()
        self._results: multiprocessing.queues.Queue[dict[str, Any]] = context.Queue()
        self._process = context.Process(
            target=flood, args=(port, count, list(sources), self._ready, self._stop, self._results)
        )
        self.count = count
        self.results: dict[str, Any] = {}

    @contextlib.contextmanager
    def running(self) -> Iterator[Flood]:
        self._process.start()
        try:
            if not self._ready.wait(120):
                raise AssertionError(f"opening {self.count} connections took over 120 s")
            yield self
        finally:
            self._stop.set()
            with contextlib.suppress(queue.Empty):
                self.results = self._results.get(timeout=60)
            self._process.join(30)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()


def flood(
    port: int,
    count: int,
    sources: list[str],
    ready: synchronize.Event,
    stop: synchronize.Event,
    results: multiprocessing.queues.Queue[dict[str, Any]],
) -> None:
    """The flooding process (see :class:`Flood`); puts its counts on ``results`` when stopped."""
    selector = selectors.DefaultSelector()
    opened = 0
    answers: dict[str, int] = {}

    def connect(source: str) -> None:
        nonlocal opened
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((source, 0))
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            sock.send(b"P")
        except OSError:
            sock.close()
            return
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, source)
        opened += 1

    for i in range(count):
        connect(sources[i % len(sources)])
    ready.set()
    while not stop.is_set():
        for key, _ in selector.select(0.05):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                status = sock.recv(64)[9:12].decode() or "closed"
            except OSError:
                status = "reset"
            answers[status] = answers.get(status, 0) + 1
            selector.unregister(sock)
            sock.close()
            connect(key.data)
    held = len(selector.get_map())
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    results.put({"opened": opened, "held at the end": held, "answers": answers})


def timed(request: httpx.Request, source: str) -> tuple[float, httpx.Response]:
    """Send ``request`` on a new connection from ``source``; seconds to the answer, and it."""
    started = time.perf_counter()
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(timeout=30, transport=transport) as client:
        response = client.send(request)
    return time.perf_counter() - started, response


def serve_during_flood(requests: list[httpx.Request], source: str = "127.0.0.1") -> list[float]:
    """Each request on its own new connection; every one must be served. Returns the times."""
    times = []
    for request in requests:
        try:
            seconds, response = timed(request, source)
        except httpx.HTTPError as exc:
            raise AssertionError(f"{request.method} {request.url.path} failed: {exc!r}") from exc
        assert response.status_code < 300, (
            f"{request.method} {request.url.path} was not served during the flood:"
            f" {response.status_code} {response.text}"
        )
        times.append(seconds)
    return times


def summary(name: str, times: list[float]) -> str:
    return (
        f"{name}: median {statistics.median(times) * 1000:.1f} ms,"
        f" max {max(times) * 1000:.1f} ms over {len(times)}"
    )


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_healthz_and_authenticated_produce_are_served_through_an_idle_flood(
    data_dir: Path,
) -> None:
    """The flood from many addresses fills the broker's connections; the reserve still serves."""
    raise_open_file_limit(ATTACK + 1_000)
    # Spread so that no address reaches its own cap: the global limit is what is tested.
    sources = [f"127.0.0.{n}" for n in range(2, 2 + max(20, ATTACK // 200))]
    limit = 1024
    args = ["--token", TOKEN, "--log-level", "WARNING", "--max-connections", str(limit)]
    with BrokerProcess(data_dir, args) as broker:
        assert broker.process is not None
        pid = broker.process.pid
        url = broker.url
        headers = {"Authorization": f"Bearer {TOKEN}"}
        created = httpx.post(f"{url}/v1/topics", json={"name": "t"}, headers=headers)
        assert created.status_code == 201, created.text
        idle_fds = open_fds(pid)
        with Flood(broker.port, ATTACK, sources).running() as flood:
            time.sleep(1)
            held = open_fds(pid)
            healthz = serve_during_flood(
                [httpx.Request("GET", f"{url}/healthz") for _ in range(SAMPLES)]
            )
            produce = serve_during_flood(
                [
                    httpx.Request(
                        "POST",
                        f"{url}/v1/topics/t/records",
                        json={"records": [{"value": i}]},
                        headers=headers,
                    )
                    for i in range(SAMPLES)
                ],
            )
        print(
            f"\n{ATTACK} idle connections from {len(sources)} addresses ({flood.results});"
            f" broker descriptors {idle_fds} idle, {held} during the flood;"
            f"\n  {summary('GET /healthz', healthz)}\n  {summary('authenticated produce', produce)}"
        )
        assert held <= idle_fds + limit + REFUSAL_BUDGET + FD_SLACK, (idle_fds, held)
        stored = httpx.get(
            f"{url}/v1/topics/t/partitions/0/records", params={"limit": 100}, headers=headers
        ).json()
        assert [r["value"] for r in stored["records"]] == list(range(SAMPLES))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_one_address_holds_at_most_its_share(data_dir: Path) -> None:
    """Without a token: one address floods; it holds its cap, others (and it) are still served."""
    raise_open_file_limit(ATTACK + 1_000)
    per_address = 100
    args = ["--log-level", "WARNING", "--max-connections-per-address", str(per_address)]
    with BrokerProcess(data_dir, args) as broker:
        assert broker.process is not None
        pid = broker.process.pid
        idle_fds = open_fds(pid)
        with Flood(broker.port, ATTACK, ["127.0.0.1"]).running() as flood:
            time.sleep(1)
            held = open_fds(pid)
            # From the flooding address itself: its oldest idle connection makes room.
            same = serve_during_flood(
                [httpx.Request("GET", f"{broker.url}/healthz") for _ in range(SAMPLES)]
            )
            produce = serve_during_flood(
                [
                    httpx.Request(
                        "POST", f"{broker.url}/produce", json={"topic": "t", "message": i}
                    )
                    for i in range(SAMPLES)
                ],
                source="127.0.0.2",
            )
        print(
            f"\n{ATTACK} idle connections from one address (cap {per_address};"
            f" {flood.results}); broker descriptors {idle_fds} idle, {held} during the flood;"
            f"\n  {summary('GET /healthz, same address', same)}"
            f"\n  {summary('produce, another address', produce)}"
        )
        assert held <= idle_fds + per_address + REFUSAL_BUDGET + FD_SLACK, (idle_fds, held)
        assert flood.results.get("answers", {}).get("503", 0) > 0, (
            f"the flood was never refused: was it a flood? {flood.results}"
        )


def test_a_connection_without_a_complete_head_is_closed_at_the_deadline(data_dir: Path) -> None:
    with BrokerProcess(data_dir, ["--header-timeout", "1"]) as broker:
        sock = socket.create_connection(("127.0.0.1", broker.port), timeout=30)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line: never complete
            started = time.monotonic()
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            waited = time.monotonic() - started
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"code":"REQUEST_TIMEOUT"' in answer, answer
        assert 0.5 < waited < 20, f"closed after {waited:.1f}s, with a 1 s deadline"


def test_a_complete_head_meets_the_deadline_even_with_a_slow_body(data_dir: Path) -> None:
    """The deadline is for the head; the body has the request timeout."""
    args = ["--header-timeout", "1", "--request-timeout", "30"]
    with BrokerProcess(data_dir, args) as broker:
        sock = socket.create_connection(("127.0.0.1", broker.port), timeout=30)
        try:
            body = b'{"records": [{"value": 1}]}'
            sock.sendall(
                b"POST /v1/topics/t/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            time.sleep(2)
            sock.sendall(body)
            answer = sock.recv(4096)
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE):
                raise
            answer = b"reset"
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.1 200 "), answer
