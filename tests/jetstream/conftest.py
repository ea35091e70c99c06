"""The backend on the session's real 3-node NATS cluster (``nats_cluster``, tests/conftest.py).

Every test opens the backend in a namespace of its own, so tests never see each other's
streams and buckets although they share the cluster.  ``second_gateway`` opens the same
namespace over a second connection: another broker process, as far as the backend can tell.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from minimq.jetstream import JetStreamStorage, open_jetstream_storage
from tests.support.nats_cluster import NatsCluster


@pytest.fixture
def namespace() -> str:
    return f"js{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def storage(nats_cluster: NatsCluster, namespace: str) -> AsyncIterator[JetStreamStorage]:
    opened = await open_jetstream_storage(nats_cluster.urls, namespace=namespace)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def second_gateway(
    nats_cluster: NatsCluster, namespace: str, storage: JetStreamStorage
) -> AsyncIterator[JetStreamStorage]:
    """The same namespace through another connection (servers listed in another order)."""
    opened = await open_jetstream_storage(list(reversed(nats_cluster.urls)), namespace=namespace)
    try:
        yield opened
    finally:
        await opened.close()
