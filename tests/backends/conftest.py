"""One backend conformance suite, run against every storage backend.

Each test gets a fresh, empty backend from the ``backend`` fixture: the disk
engine in a temp data dir, the in-memory fake, or the JetStream backend on a
real 3-node NATS cluster (the session's ``nats_cluster``, each test in its own
namespace so tests never see each other's streams and buckets).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from minimq.core.storage_seam import Storage
from minimq.jetstream import open_jetstream_storage
from minimq.storage import open_storage
from tests.support.memory_storage import MemoryStorage
from tests.support.nats_cluster import NatsCluster

PERSISTENT = ["disk", "jetstream"]
ALL = ["disk", "memory", "jetstream"]
_namespaces = itertools.count()


@dataclass
class Backend:
    """A backend under test: ``storage`` is open; ``reopen`` closes and opens it again."""

    kind: str
    storage: Storage
    reopen: Callable[[], Awaitable[Storage]]


async def _open(
    kind: str, where: Path | None, cluster: NatsCluster | None, namespace: str
) -> Storage:
    if kind == "disk":
        assert where is not None
        return await open_storage(where)
    if kind == "memory":
        return MemoryStorage()
    assert cluster is not None
    return await open_jetstream_storage(cluster.urls, replicas=3, namespace=namespace)


@pytest.fixture(params=ALL)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async for item in _backend_fixture(request, tmp_path):
        yield item


async def _backend_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    kind: str = request.param
    cluster = request.getfixturevalue("nats_cluster") if kind == "jetstream" else None
    namespace = f"conf{next(_namespaces)}"
    where = tmp_path / "data" if kind == "disk" else None
    if where is not None:
        where.mkdir()
    state = Backend(kind, await _open(kind, where, cluster, namespace), reopen=_no_reopen)

    async def reopen() -> Storage:
        await state.storage.close()
        state.storage = await _open(kind, where, cluster, namespace)
        return state.storage

    state.reopen = reopen
    try:
        yield state
    finally:
        await state.storage.close()


async def _no_reopen() -> Storage:
    raise AssertionError("replaced by the fixture")


@pytest.fixture(params=PERSISTENT)
async def persistent_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """Only the backends whose data outlives a close (the fake's does not)."""
    async for item in _backend_fixture(request, tmp_path):
        yield item
