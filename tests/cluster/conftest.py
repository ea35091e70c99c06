"""Fault tests on a real 3-node JetStream cluster with MiniMQ gateways in front of it.

These tests kill nodes, so each starts a cluster of its own (function scope), never the
session's shared ``nats_cluster``.  Every process is stopped by PID when the test ends, also
when it failed.  ``MINIMQ_FULL_RELIABILITY=1`` runs longer phases and more load, like
``tests/reliability``; the default keeps the whole directory within a few minutes.
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import new_namespace
from tests.support.nats_cluster import START_TIMEOUT, NatsCluster
from tests.support.processes import BrokerProcess

FULL = os.environ.get("MINIMQ_FULL_RELIABILITY") == "1"


def scale(reduced: float, full: float) -> float:
    """``full`` under ``MINIMQ_FULL_RELIABILITY=1``, else ``reduced``."""
    return full if FULL else reduced


GatewayFactory = Callable[..., BrokerProcess]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A 3-node cluster of this test's own (it may be faulted)."""
    with NatsCluster(tmp_path / "nats", nodes=3) as started:
        yield started


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@pytest.fixture
def gateways(tmp_path: Path, cluster: NatsCluster, namespace: str) -> Iterator[GatewayFactory]:
    """``gateways(nodes=None)`` starts a broker over the cluster (``nodes``: the node indexes it
    is given, all by default), in this test's namespace; all are killed at the end."""
    started: list[BrokerProcess] = []

    def start(nodes: Sequence[int] | None = None, extra_args: Sequence[str] = ()) -> BrokerProcess:
        urls = [cluster.urls[i] for i in (nodes if nodes is not None else range(3))]
        data = tmp_path / f"gateway-{len(started)}" / "data"
        data.mkdir(parents=True)
        process = BrokerProcess(
            data,
            ["--replicas", "3", "--log-level", "WARNING", *extra_args],
            backend=",".join(urls),
            nats_namespace=namespace,
        )
        started.append(process)  # before start: a half-started one is killed too
        return process.start()

    try:
        yield start
    finally:
        for process in started:
            process.kill()


def partition_stream(cluster: NatsCluster, namespace: str, partition: int = 0) -> str:
    """The name of the stream holding ``partition`` of the namespace's only topic."""
    pattern = re.compile(rf"{re.escape(namespace)}-[0-9a-f]{{32}}-{partition}")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for index in cluster.running_indexes():
            for stream in _streams(cluster, index):
                if pattern.fullmatch(stream.get("name", "")):
                    return str(stream["name"])
        time.sleep(0.2)
    raise AssertionError(f"no stream matching {pattern.pattern} on any node")


def stream_state(cluster: NatsCluster, index: int, stream: str) -> dict[str, Any] | None:
    """``stream``'s state as node ``index`` itself holds it (its ``/jsz``), None if absent."""
    for found in _streams(cluster, index):
        if found.get("name") == stream:
            state: dict[str, Any] = found.get("state") or {}
            return state
    return None


def _streams(cluster: NatsCluster, index: int) -> list[dict[str, Any]]:
    try:
        report = cluster.jsz(index, "?streams=true")
    except (OSError, urllib.error.URLError, ValueError):
        return []
    return [
        stream
        for account in report.get("account_details") or []
        for stream in account.get("stream_detail") or []
    ]


def results_line(name: str, **figures: object) -> str:
    """One greppable line of figures, printed (``pytest -s``) and kept in the test's report."""
    line = f"CLUSTER-RESULT {name}: " + " ".join(f"{k}={v}" for k, v in figures.items())
    print(line, flush=True)
    return line
