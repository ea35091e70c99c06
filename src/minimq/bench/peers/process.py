"""A broker server as a child process: free port on 127.0.0.1, temp directory, stop by PID.

Every server the benchmark starts goes through :class:`ServerProcess`, so all
of them get the same treatment: the command runs with its output in a log file
inside its own temporary directory, :meth:`ServerProcess.start` waits (bounded)
until the port accepts connections, and :meth:`ServerProcess.stop` sends
SIGTERM to that PID, then SIGKILL after a grace period, and removes the
directory. It is a context manager, so an exception or Ctrl-C in the middle of
a workload still stops the server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from minimq.bench.deps import require

START_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every one still running, then SIGKILL each that outlives the grace period."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def directory_bytes(path: Path) -> int:
    """Total size of the regular files below ``path`` (what the broker keeps on disk)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += (Path(root) / name).stat().st_size
    return total


class ServerProcess:
    """One server process; ``command`` builds its argv from (port, data directory).

    Not thread-safe: one benchmark thread starts, measures and stops it.
    """

    def __init__(
        self,
        name: str,
        command: Callable[[int, Path], Sequence[str]],
        extra_ports: Mapping[str, int] | None = None,
    ) -> None:
        self.name = name
        self._command = command
        self.port = free_port()
        self.extra_ports = dict(extra_ports or {})
        """Further ports ``command`` listens on, by purpose (MiniMQ's ``"kafka"``)."""
        self.workdir = Path(tempfile.mkdtemp(prefix=f"minimq-bench-{name}-"))
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    def start(self) -> ServerProcess:
        argv = list(self._command(self.port, self.data_dir))
        with (self.workdir / "server.log").open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            self._wait_for_port()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; log:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not listen within {START_TIMEOUT_S:.0f} s")

    def log_tail(self, limit: int = 2000) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace")[-limit:] if path.exists() else ""

    def rss_bytes(self) -> int:
        """Resident memory of the server and any children it started."""
        psutil = require("psutil", "psutil")
        process = psutil.Process(self.pid)
        processes = [process, *process.children(recursive=True)]
        return sum(int(p.memory_info().rss) for p in processes)

    def disk_bytes(self) -> int:
        return directory_bytes(self.data_dir)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; then delete the temp directory."""
        process, self._process = self._process, None
        if process is not None:
            stop_processes([process])
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
