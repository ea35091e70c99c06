"""ENOSPC and EIO on write and fsync, through the HTTP API of an in-process broker.

The broker runs in this process (aiohttp's test server on 127.0.0.1) so that
``os.pwrite`` and ``os.fsync`` can be made to fail for files under its data
directory only.  For every (error, call) pair: the failing produce is not
acknowledged (507 ``STORAGE_FULL`` / 503 ``LOG_FAILED``), reads keep working,
produce resumes once space returns (ENOSPC) or after a restart (EIO), and after
a restart every acknowledged message is there and no refused one is.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from bench.reliability.ledger import Ledger, StoredRecord

from minimq.core import Broker
from minimq.core.topic_config import FsyncPolicy
from minimq.server.app import create_app
from minimq.server.config import BrokerConfig
from minimq.server.metrics import BrokerMetrics
from minimq.storage import open_storage

TOPIC = "disk"


class DiskFaults:
    """Replaces ``os.pwrite`` and ``os.fsync``: when armed they fail for files under ``root``.

    Calls on files under ``root`` are counted, failed or not.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = str(root.resolve())
        self.armed: dict[str, int] = {}
        self.injected = 0
        self.calls: Counter[str] = Counter()  # calls on files under root, failed or not
        for name in ("pwrite", "fsync"):
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(fd: int, *args: Any) -> Any:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(self.root):
                self.calls[name] += 1
                error = self.armed.get(name)
                if error is not None:
                    self.injected += 1
                    raise OSError(error, os.strerror(error))
            return real(fd, *args)

        return call


@contextlib.asynccontextmanager
async def in_process_broker(
    data_dir: Path, fsync: FsyncPolicy | None = None
) -> AsyncIterator[TestClient[Any, Any]]:
    config = BrokerConfig(data_dir=data_dir, fsync=fsync or FsyncPolicy())
    storage = await open_storage(data_dir, config.fsync)
    metrics = BrokerMetrics()
    broker = Broker(storage, config.broker_settings, metrics)
    try:
        async with TestClient(TestServer(create_app(broker, config, metrics))) as client:
            yield client
    finally:
        await broker.close()


class Producer:
    def __init__(self, client: TestClient[Any, Any], ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger
        self.sequence = 0

    async def produce(self, count: int = 3) -> tuple[int, str]:
        ids = [f"m{self.sequence + i}" for i in range(count)]
        self.sequence += count
        self.ledger.sent(ids)
        response = await self.client.post(
            f"/v1/topics/{TOPIC}/records", json={"records": [{"value": {"id": i}} for i in ids]}
        )
        body = await response.json()
        if response.status == 200:
            offsets = [(o["partition"], o["offset"]) for o in body["offsets"]]
            self.ledger.acknowledged(ids, offsets)
            return 200, "OK"
        return response.status, body["error"]["code"]


async def stored(client: TestClient[Any, Any]) -> dict[int, list[StoredRecord]]:
    response = await client.get(
        f"/v1/topics/{TOPIC}/partitions/0/records", params={"limit": 10_000}
    )
    assert response.status == 200
    records = (await response.json())["records"]
    return {0: [(r["offset"], r["value"]["id"]) for r in records]}


@pytest.mark.parametrize("call", ["pwrite", "fsync"])
@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
async def test_disk_errors_are_never_acknowledged_and_lose_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, call: str, error: int
) -> None:
    faults = DiskFaults(data_dir, monkeypatch)
    ledger = Ledger()
    full = error == errno.ENOSPC
    refusal = (507, "STORAGE_FULL") if full else (503, "LOG_FAILED")
    async with in_process_broker(data_dir) as client:
        producer = Producer(client, ledger)
        for _ in range(10):
            assert await producer.produce() == (200, "OK")
        before = await stored(client)

        faults.armed[call] = error
        assert await producer.produce() == refusal
        # Still failing: refused again (the same error while the disk is full; a
        # failed log under EIO refuses until it is reopened).
        assert await producer.produce() == (refusal if full else (503, "LOG_FAILED"))
        assert await stored(client) == before, "reads keep working and show nothing refused"
        assert faults.injected >= 1

        faults.armed.clear()  # space returns / the device recovers
        if full:
            assert await producer.produce() == (200, "OK")
        else:
            assert await producer.produce() == (503, "LOG_FAILED")

    async with in_process_broker(data_dir) as client:  # a restart on the same data
        producer.client = client
        assert await producer.produce() == (200, "OK")
        verdict = ledger.check_log(await stored(client))
    assert verdict.ok, verdict.summary()
    assert verdict.records == ledger.acknowledged_count == (12 if full else 11) * 3


async def test_running_out_of_file_descriptors_is_a_503_and_leaves_nothing_behind(
    data_dir: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with in_process_broker(data_dir) as client:
        # Each partition keeps three files open: 100 partitions cannot fit in 60 spare fds.
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 60, hard))
        try:
            response = await client.post("/v1/topics", json={"name": "wide", "partitions": 100})
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert response.status == 503, await response.text()
        assert (await response.json())["error"]["code"] == "STORAGE_ERROR"
        assert not (data_dir / "topics" / "wide").exists()
        retried = await client.post("/v1/topics", json={"name": "wide", "partitions": 100})
        assert retried.status == 201, await retried.text()


async def test_a_failed_interval_fsync_is_never_retried_and_stops_acknowledgements(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = DiskFaults(data_dir, monkeypatch)
    ledger = Ledger()
    interval = FsyncPolicy.parse("interval:20")
    async with in_process_broker(data_dir, interval) as client:
        producer = Producer(client, ledger)
        assert await producer.produce() == (200, "OK")
        faults.armed["fsync"] = errno.EIO
        # Acknowledged after the write, as interval:T promises; the timer's fsync then fails.
        assert await producer.produce() == (200, "OK")
        await asyncio.sleep(0.3)
        assert faults.injected >= 1
        faults.armed.clear()
        # The failed fsync is not retried and nothing more is acknowledged until a restart.
        assert await producer.produce() == (503, "LOG_FAILED")
        assert await stored(client) == {0: [(0, "m0"), (1, "m1"), (2, "m2"), (3, "m3"),
                                            (4, "m4"), (5, "m5")]}  # fmt: skip
        fsyncs = faults.calls["fsync"]
        await asyncio.sleep(0.3)
        assert faults.calls["fsync"] == fsyncs
    async with in_process_broker(data_dir, interval) as client:
        producer.client = client
        assert await producer.produce() == (200, "OK")
        verdict = ledger.check_log(await stored(client))
    assert verdict.ok, verdict.summary()
