"""The system under test: a 3-node NATS JetStream cluster and MiniMQ gateways over it.

The nodes run exactly the configuration ``minimq up --cluster`` writes
(:mod:`minimq.cli.nats_cluster`: ``sync_interval: always``, full-mesh routes,
``max_payload`` 8 MB), each with its own store directory inside one temporary
directory. That module numbers a node's ports consecutively from three bases,
so :func:`free_port_run` looks for runs of free 127.0.0.1 ports. "Ready" is
what ``minimq up`` waits for: every node's ``/healthz`` answers and names the
JetStream meta leader.

Gateways are ``python -m minimq broker --backend nats://... --replicas 3``
processes (:class:`~minimq.bench.peers.process.ServerProcess`: free port, temp
directory, stop by PID), all in one NATS namespace of their own, so they share
topics like a real deployment.

Everything is stopped by PID (SIGTERM, then SIGKILL after a grace period) and
the temporary directory removed when the context manager exits, also on an
exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType

from minimq.bench.deps import MissingDependency
from minimq.bench.peers.process import START_TIMEOUT_S, ServerProcess, stop_processes
from minimq.cli.nats_cluster import (
    NatsCluster,
    NatsServerMissing,
    cluster_ready,
    find_nats_server,
    plan_cluster,
    write_configs,
)

REPLICAS = 3
NODES = 3
READY_POLL_S = 0.2
PORT_RUN_ATTEMPTS = 200


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_run(size: int, taken: set[int]) -> int:
    """The first of ``size`` consecutive 127.0.0.1 ports that were free a moment ago and are
    not in ``taken`` (which then holds them)."""
    for _ in range(PORT_RUN_ATTEMPTS):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        run = range(base, base + size)
        if base + size - 1 <= 65535 and taken.isdisjoint(run) and all(map(_port_free, run)):
            taken.update(run)
            return base
    raise RuntimeError(f"found no {size} consecutive free ports on 127.0.0.1")


def namespace() -> str:
    """A fresh NATS namespace for one benchmark run: its streams and buckets are its own."""
    return f"bench{uuid.uuid4().hex[:12]}"


class ClusterUnderTest:
    """The NATS nodes and ``gateways`` MiniMQ gateways; a context manager.

    Not thread-safe: the benchmark's main thread starts, uses and stops it.
    """

    def __init__(self, gateways: int) -> None:
        try:
            self.binary = find_nats_server()
        except NatsServerMissing as exc:
            raise MissingDependency(str(exc)) from None
        self.namespace = namespace()
        self.workdir = Path(tempfile.mkdtemp(prefix="minimq-bench-cluster-"))
        taken: set[int] = set()
        self.nats: NatsCluster = plan_cluster(
            self.workdir,
            bind_host="127.0.0.1",
            connect_host="127.0.0.1",
            client_port=free_port_run(NODES, taken),
            route_port=free_port_run(NODES, taken),
            monitor_port=free_port_run(NODES, taken),
            size=NODES,
        )
        self._node_processes: list[subprocess.Popen[bytes]] = []
        self.gateways = [self._gateway() for _ in range(gateways)]

    @property
    def servers(self) -> list[str]:
        """Client URLs of every node, as nats-py takes them."""
        return self.nats.client_urls()

    @property
    def node_pids(self) -> list[int]:
        return [process.pid for process in self._node_processes]

    def gateway_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.gateways[index].port}"

    def _gateway(self) -> ServerProcess:
        def command(port: int, data_dir: Path) -> list[str]:
            return [
                sys.executable, "-m", "minimq", "broker",
                "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
                "--kafka-port", "0", "--log-level", "WARNING",
                "--backend", self.nats.backend(), "--replicas", str(REPLICAS),
                "--nats-namespace", self.namespace,
            ]  # fmt: skip

        return ServerProcess("gateway", command)

    def start(self) -> ClusterUnderTest:
        try:
            write_configs(self.nats)
            for node in self.nats.nodes:
                with (self.workdir / f"{node.name}.log").open("ab") as log:
                    self._node_processes.append(
                        subprocess.Popen(
                            [self.binary, "-c", str(node.config_path)],
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                        )
                    )
            self._wait_for_nodes()
            for gateway in self.gateways:
                gateway.start()
                self._wait_for_health(gateway)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_nodes(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for node, process in zip(self.nats.nodes, self._node_processes, strict=True):
                if process.poll() is not None:
                    raise RuntimeError(
                        f"nats-server {node.name} exited; log:\n{self._log(node.name)}"
                    )
            if cluster_ready(self.nats):
                return
            time.sleep(READY_POLL_S)
        raise TimeoutError(f"the NATS cluster was not ready within {START_TIMEOUT_S:.0f} s")

    def _wait_for_health(self, gateway: ServerProcess) -> None:
        """The gateway answers ``/healthz`` (it listens once its JetStream storage is open)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        url = f"http://127.0.0.1:{gateway.port}/healthz"
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(READY_POLL_S)
        raise TimeoutError(f"gateway did not become healthy; log:\n{gateway.log_tail()}")

    def _log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Gateways first (they hold NATS connections), then the nodes; by PID; then the files."""
        for gateway in self.gateways:
            gateway.stop()  # also removes the temp directory of one never started
        stop_processes(self._node_processes)
        self._node_processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ClusterUnderTest:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
