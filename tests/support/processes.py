"""Real broker processes for integration tests: free port, temp data dir, real HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

# Starting a process on a loaded machine (two cores shared by many test runs)
# can take tens of seconds, so no start waits less than this floor, whatever
# a caller asks; MINIMQ_TEST_START_TIMEOUT raises (or lowers) it.
START_TIMEOUT = float(os.environ.get("MINIMQ_TEST_START_TIMEOUT", "60"))

# A broker's Kafka listener defaults to port 9092, which concurrent test brokers
# (``minimq up``, ``minimq broker`` started by tests directly) would fight over:
# every process a test starts has it off unless the test asks for a port.
os.environ.setdefault("MINIMQ_KAFKA_PORT", "0")


# How often a first start is tried again on new ports after an "address in use".
PORT_CLASH_RETRIES = 3


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str, timeout: float = START_TIMEOUT, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits.

    Waits at least :data:`START_TIMEOUT`. The error says which it was: the
    process exited (with its code), or it was still running but not answering.
    """
    timeout = max(timeout, START_TIMEOUT)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with code {process.returncode} before {url} answered"
            )
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last_error = exc
        time.sleep(0.05)
    state = "" if process is None else f" (process {process.pid} still running: still starting?)"
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s{state}: {last_error!r}")


class BrokerProcess:
    """``python -m minimq broker`` bound to 127.0.0.1 on a free port.

    ``start()`` waits for ``/healthz``; ``stop()`` sends SIGTERM (a clean
    shutdown); ``kill()`` sends SIGKILL (a crash). The data directory outlives
    the process so a test can start it again on the same data.

    The Kafka listener is off (``--kafka-port 0``) unless the test asks for it
    with ``kafka=True`` (a free port) or ``kafka_port=N``; it is bound before
    HTTP, so it is up once ``start()`` returns (``kafka_bootstrap``).

    ``backend="nats://h1:4222,h2:4222"`` runs it as a gateway over a JetStream
    cluster (``--backend``; ``nats_namespace`` gives ``--nats-namespace``): the
    data directory then holds no records, only the log file next to it.
    """

    def __init__(
        self,
        data_dir: Path,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        env: dict[str, str] | None = None,
        kafka: bool = False,
        kafka_port: int | None = None,
        backend: str | None = None,
        nats_namespace: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.backend = backend
        self.nats_namespace = nats_namespace
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.kafka_port: int | None = kafka_port or (free_port() if kafka else None)
        # Ports this object picked itself may be taken by another process between
        # free_port() and the broker's bind (many test runs share the machine):
        # until the broker has started once, such a clash is retried on new ports.
        self._own_ports = port is None and kafka_port is None
        self._started_once = False
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"broker-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kafka_bootstrap(self) -> str:
        if self.kafka_port is None:
            raise RuntimeError("this broker was started without a Kafka port (kafka=True)")
        return f"127.0.0.1:{self.kafka_port}"

    def start(self, timeout: float = START_TIMEOUT) -> BrokerProcess:
        for _ in range(PORT_CLASH_RETRIES):
            logged_before = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._start_once(timeout)
            except RuntimeError:
                clash = "address already in use" in self.log()[logged_before:].lower()
                if not (clash and self._own_ports and not self._started_once):
                    raise
                self.port = free_port()
                self.kafka_port = free_port() if self.kafka_port else None
                continue
            self._started_once = True
            return self
        raise RuntimeError(f"broker failed to start: ports taken {PORT_CLASH_RETRIES} times")

    def _start_once(self, timeout: float) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "minimq",
                "broker",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--kafka-port",
                str(self.kafka_port or 0),
                *(["--backend", self.backend] if self.backend else []),
                *(["--nats-namespace", self.nats_namespace] if self.nats_namespace else []),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        try:
            wait_for_http(f"{self.url}/healthz", timeout, self.process)
        except Exception as exc:
            self.kill()
            raise RuntimeError(
                f"broker failed to start: {exc}; log tail:\n{self.log()[-4000:] or '(empty)'}"
            ) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def restart(self) -> BrokerProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
