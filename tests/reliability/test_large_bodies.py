"""16 clients each sending a 1 GiB body get 413 while the broker's memory stays flat.

Bodies are streamed from a loop over one 64 KiB buffer: nothing near 1 GiB is
ever allocated on either side.  Half the clients declare ``Content-Length:
1 GiB`` (refused before the body is read), half send it chunked (refused once
it passes ``--max-body-bytes``).  The broker's RSS is sampled throughout.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path

import httpx
import psutil

from tests.support.processes import BrokerProcess

GIB = 1 << 30
CHUNK = b"x" * (64 * 1024)
CLIENTS = 16
# Default settings (--max-body-bytes 8 MiB): held in memory, the eight chunked
# bodies alone could pin 64 MiB before their 413s; past 1 MiB each is spooled
# to a temporary file instead (minimq.server.body_spool).
RSS_BOUND = 50 * 1024 * 1024


def send_huge_body(port: int, chunked: bool, deadline: float) -> tuple[int | None, int]:
    """Stream up to 1 GiB; return (status of the answer or None if cut off, bytes sent)."""
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % GIB
    frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/topics/big/records HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n%s\r\n\r\n" % framing
        )
        try:
            while sent < GIB and time.monotonic() < deadline:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(frame)
                sent += len(CHUNK)
            reply = sock.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            return None, sent
    return (int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None), sent


def test_sixteen_one_gib_bodies_are_refused_without_memory_growth(data_dir: Path) -> None:
    with BrokerProcess(data_dir, ["--log-level", "WARNING"]) as broker:
        assert broker.process is not None
        process = psutil.Process(broker.process.pid)
        for i in range(50):  # warm up: imports, first topic, buffers
            httpx.post(f"{broker.url}/v1/topics/warm/records", json={"records": [{"value": i}]})
        baseline = process.memory_info().rss
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.01)

        results: list[tuple[int | None, int]] = []
        deadline = time.monotonic() + 60
        sampler = threading.Thread(target=sample)
        clients = [
            threading.Thread(
                target=lambda c=n % 2 == 1: results.append(send_huge_body(broker.port, c, deadline))
            )
            for n in range(CLIENTS)
        ]
        sampler.start()
        for client in clients:
            client.start()
        for client in clients:
            client.join(90)
        done.set()
        sampler.join()
        assert httpx.get(f"{broker.url}/healthz").status_code == 200
    growth = peak - baseline
    print(f"RSS baseline {baseline / 2**20:.1f} MiB, peak growth {growth / 2**20:.1f} MiB")
    assert len(results) == CLIENTS
    for status, sent in results:
        assert status == 413 or (status is None and sent < 64 * 1024 * 1024), (status, sent)
        assert sent < GIB
    assert growth < RSS_BOUND, f"broker RSS grew {growth / 2**20:.1f} MiB"
