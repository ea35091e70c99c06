"""Slow readers: clients that ask for a lot and never read it cost bounded memory.

Streams (SSE) and fetches that never read used to keep everything the broker
had built for them: 16 streams on a 128-partition topic took a broker from
55 MiB to 4 GiB, and it stayed there after they left. Now large answers
reserve their bytes in a broker-wide budget (``--response-buffer-bytes``),
are written with backpressure, a reader who takes nothing for
``--write-timeout`` is dropped, and the memory is given back once they are
gone (:mod:`minimq.server.response_budget`).

The broker's RSS is sampled every 20 ms. Bounds: the peak stays within the
budget plus what building one answer takes; after the readers leave, RSS is
back within 20 MiB of where it started.

Reduced: 8 streams on 32 partitions (16 MB) and 8 fetches of 16 MiB, with a
small budget; full (``MINIMQ_FULL_RELIABILITY=1``): the sizes of the attack
that found the defect, 16 streams on 128 partitions (128 MB) and 24 fetches
of 64 MiB, with the default budget.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from minimq.server.response_budget import TRIM_IDLE_S
from tests.reliability.conftest import FULL, scale
from tests.support.processes import BrokerProcess

MIB = 1024 * 1024
# What building one answer may hold at once besides the budget: its records,
# their JSON texts and the joined body.
BUILD_COPIES = 3
SLACK_MIB = 16
RETURN_WITHIN_MIB = 20
# Before a reading: the broker gives freed memory back once its response
# budget has been idle for TRIM_IDLE_S.
SETTLE_S = TRIM_IDLE_S + 1


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/PID/status")


class RssSampler:
    """The highest RSS of ``pid`` seen while running, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib(self.pid))

    @contextlib.contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def fill(url: str, partitions: int, per_partition: int, record_bytes: int) -> None:
    value = "x" * record_bytes
    batch = max(1, min(per_partition, 4 * MIB // record_bytes))
    with httpx.Client(base_url=url, timeout=120) as client:
        created = client.post("/v1/topics", json={"name": "t", "partitions": partitions})
        assert created.status_code == 201, created.text
        for partition in range(partitions):
            left = per_partition
            while left:
                count = min(left, batch)
                records = [{"value": value, "partition": partition}] * count
                response = client.post("/v1/topics/t/records", json={"records": records})
                assert response.status_code == 200, response.text
                left -= count


@contextlib.contextmanager
def never_reading(port: int, requests: list[bytes]) -> Iterator[list[socket.socket]]:
    """One connection per request, each sending it and then reading nothing."""
    sockets = []
    try:
        for request in requests:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(request)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def settled_rss(pid: int, target: float, within_s: float = 20.0) -> float:
    """RSS once the broker has settled and it is at most ``target``, or after ``within_s``."""
    time.sleep(SETTLE_S)
    deadline = time.monotonic() + within_s
    now = rss_mib(pid)
    while now > target and time.monotonic() < deadline:
        time.sleep(0.2)
        now = rss_mib(pid)
    return now


def run_attack(
    data_dir: Path,
    args: list[str],
    budget_mib: int,
    setup: tuple[int, int, int],
    requests: list[bytes],
    largest_answer_mib: float,
    hold_s: float,
) -> tuple[float, float, float]:
    """Start, fill, attack, leave: RSS at the start, at the peak and after. Checks the bounds."""
    with BrokerProcess(data_dir, ["--log-level", "WARNING", *args]) as broker:
        assert broker.process is not None
        pid = broker.process.pid
        fill(broker.url, *setup)
        time.sleep(SETTLE_S)
        start = rss_mib(pid)
        with RssSampler(pid).running() as sampler:
            with never_reading(broker.port, requests):
                time.sleep(hold_s)
                healthz = httpx.get(f"{broker.url}/healthz", timeout=30)
                assert healthz.status_code == 200, healthz.text
            after = settled_rss(pid, start + RETURN_WITHIN_MIB)
        peak = sampler.peak
    bound = budget_mib + BUILD_COPIES * largest_answer_mib + SLACK_MIB
    assert peak - start <= bound, (
        f"RSS grew by {peak - start:.0f} MiB (from {start:.0f} to {peak:.0f}) with"
        f" readers that never read; bound {bound:.0f} MiB"
    )
    assert after - start <= RETURN_WITHIN_MIB, (
        f"RSS still {after:.0f} MiB after the readers left (started at {start:.0f} MiB,"
        f" peak {peak:.0f})"
    )
    return start, peak, after


def test_streams_that_never_read_cost_bounded_memory(data_dir: Path) -> None:
    streams = scale(8, 16)
    partitions, per_partition, record_bytes = (128, 1000, 1000) if FULL else (32, 500, 1000)
    budget_mib = 128 if FULL else 8
    start, peak, after = run_attack(
        data_dir,
        ["--response-buffer-bytes", str(budget_mib * MIB)],
        budget_mib,
        (partitions, per_partition, record_bytes),
        [b"GET /v1/topics/t/stream?from=earliest HTTP/1.1\r\nHost: x\r\n\r\n"] * streams,
        # One batch: about 1 MiB of records with their SSE framing.
        largest_answer_mib=2,
        hold_s=scale(3, 10),
    )
    print(
        f"\n{streams} streams that never read, {partitions} partitions x {per_partition} x"
        f" {record_bytes} B, budget {budget_mib} MiB: RSS {start:.0f} MiB at the start,"
        f" peak {peak:.0f} MiB, {after:.0f} MiB after they left"
    )


def test_fetches_that_never_read_cost_bounded_memory(data_dir: Path) -> None:
    fetches = scale(8, 24)
    max_bytes_mib = scale(16, 64)
    partitions = scale(2, 4)
    record_bytes = 8000
    per_partition = max_bytes_mib * MIB // record_bytes + 100
    budget_mib = 128 if FULL else 32
    fetch = (
        b"GET /v1/topics/t/partitions/%d/records?offset=0&limit=10000&max_bytes=%d HTTP/1.1\r\n"
        b"Host: x\r\n\r\n"
    )
    start, peak, after = run_attack(
        data_dir,
        ["--response-buffer-bytes", str(budget_mib * MIB)],
        budget_mib,
        (partitions, per_partition, record_bytes),
        [fetch % (i % partitions, max_bytes_mib * MIB) for i in range(fetches)],
        largest_answer_mib=max_bytes_mib * 1.05,  # the JSON around each record
        hold_s=scale(3, 10),
    )
    print(
        f"\n{fetches} fetches of max_bytes={max_bytes_mib} MiB that never read, budget"
        f" {budget_mib} MiB: RSS {start:.0f} MiB at the start, peak {peak:.0f} MiB,"
        f" {after:.0f} MiB after they left"
    )


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def test_a_reader_who_stops_reading_is_dropped_after_the_write_timeout(data_dir: Path) -> None:
    args = ["--write-timeout", "1", "--log-level", "WARNING"]
    with BrokerProcess(data_dir, args) as broker:
        fill(broker.url, 4, 2000, 1000)  # 8 MB: far more than the socket buffers take
        request = b"GET /v1/topics/t/stream?from=earliest HTTP/1.1\r\nHost: x\r\n\r\n"
        with never_reading(broker.port, [request]) as (sock,):
            deadline = time.monotonic() + 30
            while metric(broker.url, "minimq_slow_readers_dropped_total") < 1:
                assert time.monotonic() < deadline, "the stream that never reads was not dropped"
                time.sleep(0.2)
            # Dropped means closed: draining what the kernel buffered ends in a reset or EOF.
            sock.settimeout(30)
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(1 << 20):
                    pass
        assert metric(broker.url, "minimq_response_buffer_bytes") == 0
