"""Bodies of undeclared length: in memory up to a threshold, then in a temporary file."""

from __future__ import annotations

import contextlib
import os
import socket

import httpx
import orjson

from minimq.server.body_spool import MEMORY_BYTES, BodySpool
from tests.support.processes import BrokerProcess


def open_files() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # listdir's own descriptor, gone by now
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def test_small_bodies_stay_in_memory() -> None:
    before = open_files()
    with BodySpool() as spool:
        spool.append(b"a" * 10)
        spool.append(b"b" * 20)
        assert open_files() == before
        assert spool.getvalue() == b"a" * 10 + b"b" * 20
        assert spool.size == 30


def test_past_the_threshold_the_body_moves_to_a_file_and_comes_back_whole() -> None:
    pieces = [bytes([n]) * 100_000 for n in range(25)]  # 2.5 MB, > MEMORY_BYTES
    assert sum(map(len, pieces)) > MEMORY_BYTES
    before = open_files()
    spool = BodySpool()
    for piece in pieces:
        spool.append(piece)
    spilled = open_files() - before
    assert len(spilled) == 1  # one anonymous temporary file, already unlinked
    assert spool.getvalue() == b"".join(pieces)
    spool.close()
    assert open_files() == before


def test_a_chunked_body_larger_than_the_memory_part_is_stored_intact(
    shared_broker: BrokerProcess,
) -> None:
    values = [{"n": n, "pad": "x" * 1000} for n in range(2500)]  # ~2.6 MB of JSON
    body = orjson.dumps({"records": [{"value": v} for v in values]})
    assert MEMORY_BYTES < len(body) < 8 * 1024 * 1024
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", shared_broker.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/topics/spooled/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
        )
        reply = b""
        while data := sock.recv(65536):
            reply += data
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:300]
    stored: list[object] = []
    offset = 0
    while len(stored) < len(values):
        page = httpx.get(
            f"{shared_broker.url}/v1/topics/spooled/partitions/0/records",
            params={"offset": offset, "limit": 1000},
        ).json()
        stored += [r["value"] for r in page["records"]]
        offset = page["next_offset"]
    assert stored == values
