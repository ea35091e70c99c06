"""Fixtures every test directory shares: brokers on a temp data dir, or on a JetStream cluster.

Backends.  A module opts in to running its ``shared_broker`` tests on more than the disk
engine with a module-level mark::

    pytestmark = pytest.mark.backends("disk", "jetstream")

Every test of that module that uses ``shared_broker`` (or ``backend_broker``) then runs once
per backend named, ids ``[disk]`` and ``[jetstream]``; tests that start their own
``BrokerProcess`` on a data dir stay disk-only.  Modules without the mark (durability, power
loss, anything about the data dir) are unchanged: disk only, ids unchanged.  On ``jetstream``
the broker is a gateway (``--backend nats://...``, ``--replicas 3``) over one 3-node cluster
shared by the whole session (``nats_cluster``); every broker started gets a namespace of its
own, so modules never see each other's topics although they share the cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.nats_cluster import NatsCluster
from tests.support.processes import BrokerProcess

BACKENDS = ("disk", "jetstream")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*kinds): run the module's shared_broker tests on each storage backend named"
        f" (of {', '.join(BACKENDS)}); without it, disk only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "broker_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is None:
        return
    unknown = set(marker.args) - set(BACKENDS)
    if not marker.args or unknown:
        raise pytest.UsageError(
            f"pytest.mark.backends needs some of {BACKENDS}, got {marker.args!r}"
        )
    # Module scope: a module runs all its tests on one backend's broker, then on the next's,
    # so each backend starts one broker per module, not one per test.
    metafunc.parametrize("broker_backend", marker.args, indirect=True, scope="module")


def new_namespace() -> str:
    """A JetStream namespace no other broker of this session uses (``[A-Za-z0-9]{1,32}``)."""
    return f"t{uuid.uuid4().hex[:20]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def broker(data_dir: Path) -> Iterator[BrokerProcess]:
    """A fresh broker process on a free port with its own data directory."""
    with BrokerProcess(data_dir) as process:
        yield process


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One real 3-node JetStream cluster for the whole session (never faulted: tests that kill
    nodes start a cluster of their own)."""
    with NatsCluster(tmp_path_factory.mktemp("nats"), nodes=3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def broker_backend(request: pytest.FixtureRequest) -> str:
    """The storage backend of this module's brokers: ``disk`` unless ``backends`` says more."""
    return str(getattr(request, "param", "disk"))


BrokerFactory = Callable[..., BrokerProcess]


@pytest.fixture(scope="module")
def backend_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, broker_backend: str
) -> Iterator[BrokerFactory]:
    """Starts brokers on this module's backend: ``backend_broker(extra_args, **kwargs)``.

    ``kwargs`` go to :class:`BrokerProcess` (``kafka=True``, ``env=...``).  Every broker
    started is stopped when the module ends, also when a test failed.
    """
    started: list[BrokerProcess] = []

    def start(extra_args: Sequence[str] = (), **kwargs: Any) -> BrokerProcess:
        data = tmp_path_factory.mktemp(f"shared-{broker_backend}") / "data"
        data.mkdir()
        args = list(extra_args)
        if broker_backend == "jetstream":
            cluster: NatsCluster = request.getfixturevalue("nats_cluster")
            kwargs.update(backend=",".join(cluster.urls), nats_namespace=new_namespace())
            args += ["--replicas", "3"]
        process = BrokerProcess(data, args, **kwargs)
        started.append(process)  # before start: a half-started broker is stopped too
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture(scope="module")
def shared_broker(backend_broker: BrokerFactory) -> BrokerProcess:
    """One broker for a whole test module, for tests that do not restart it."""
    return backend_broker()
