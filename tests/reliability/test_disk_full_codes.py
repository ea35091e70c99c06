"""A full disk is refused as ``507 STORAGE_FULL`` on every path, never as ``LOG_FAILED``.

``LOG_FAILED`` means "this partition refuses appends until the broker is
restarted", which is false for a full disk under ``fsync=always``: the
partition takes appends again as soon as space returns. Produces that arrive
while the partition cleans up after a failed write, and commits whose SQLite
write finds the disk full, must say so too.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.test_disk_errors import TOPIC, DiskFaults, in_process_broker

WORKERS = 20
PRODUCES_EACH = 10


@pytest.mark.parametrize("call", ["pwrite", "fsync"])
async def test_concurrent_produces_on_a_full_disk_all_get_storage_full(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    faults = DiskFaults(data_dir, monkeypatch)
    truncate = os.ftruncate

    def slow_truncate(fd: int, length: int) -> None:
        # Cleaning up after a failed write runs in a worker thread; a slow disk
        # keeps it going while more produces arrive (the window the codes were wrong in).
        time.sleep(0.005)
        truncate(fd, length)

    monkeypatch.setattr(os, "ftruncate", slow_truncate)
    async with in_process_broker(data_dir) as client:

        async def produce(n: int) -> tuple[int, str]:
            response = await client.post(
                f"/v1/topics/{TOPIC}/records", json={"records": [{"value": n}]}
            )
            body = await response.json()
            return response.status, "OK" if response.status == 200 else body["error"]["code"]

        assert await produce(-1) == (200, "OK")
        faults.armed[call] = errno.ENOSPC
        answers: Counter[tuple[int, str]] = Counter()

        async def keep_producing(worker: int) -> None:
            # One after another, so that produces keep arriving while the
            # partition cleans up after each failed write.
            for n in range(PRODUCES_EACH):
                answers[await produce(worker * PRODUCES_EACH + n)] += 1

        await asyncio.gather(*(keep_producing(worker) for worker in range(WORKERS)))
        assert answers == Counter({(507, "STORAGE_FULL"): WORKERS * PRODUCES_EACH}), answers
        faults.armed.clear()
        assert await produce(-2) == (200, "OK"), "space is back: appends are taken again"


async def test_a_commit_on_a_full_disk_is_507_storage_full(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connections.append(connection)
        return connection

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    async with in_process_broker(data_dir) as client:
        produced = await client.post(
            f"/v1/topics/{TOPIC}/records", json={"records": [{"value": 1}, {"value": 2}]}
        )
        assert produced.status == 200
        (offsets_db,) = connections
        # SQLite's own "database or disk is full" (SQLITE_FULL), as when the
        # disk fills: the database may not grow by another page.
        pages = offsets_db.execute("PRAGMA page_count").fetchone()[0]
        offsets_db.execute(f"PRAGMA max_page_count = {pages}")
        statuses = []
        for n in range(200):  # each commit adds a row; a page holds about fifteen
            group = f"{n:03d}" + "g" * 240
            response = await client.post(
                f"/v1/groups/{group}/commit",
                json={"offsets": [{"topic": TOPIC, "partition": 0, "offset": 1}]},
            )
            body = await response.json()
            statuses.append((response.status, body.get("error", {}).get("code", "OK")))
            if response.status != 200:
                break
        assert statuses[-1] == (507, "STORAGE_FULL"), statuses[-3:]
        offsets_db.execute("PRAGMA max_page_count = 1073741823")
        retried = await client.post(
            f"/v1/groups/{'x' * 240}/commit",
            json={"offsets": [{"topic": TOPIC, "partition": 0, "offset": 1}]},
        )
        assert retried.status == 200, "space is back: commits are taken again"
