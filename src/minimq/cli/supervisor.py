"""Run several services as child processes, like a tiny Procfile runner.

:class:`Supervisor` starts each service behind :mod:`minimq.cli.orphan_guard`
(so none outlives the supervisor, even after a ``kill -9``), copies every line
a service prints to one output with a padded, optionally coloured prefix
(``broker     | ...``), and stops them all, in tiers, when asked to or when one
of them exits.

Process model
    Every service runs in its own process group, so a Ctrl-C in the terminal
    (SIGINT to the whole foreground group) reaches only the supervisor, which
    then stops the services in a deliberate order: the highest ``tier`` first
    (producers and UI) and the broker last, so producers do not log errors
    about a broker that vanished under them. Stopping a service means SIGTERM
    to its process group, a grace period, then SIGKILL to whatever is left.

Concurrency
    The public methods must be called from the main thread: signal handlers
    only run there, and Linux's parent-death signal fires when the *thread*
    that forked a child exits. One daemon thread per service reads its output
    and writes whole lines to the shared output under a lock, so lines from
    different services never interleave mid-line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import IO, TextIO

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL_SECONDS = 0.1
DEFAULT_GRACE_SECONDS = 5.0
SignalHandler = Callable[[int, FrameType | None], object] | int | None
# Bright ANSI foreground colours, assigned to services in start order.
COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93", "95", "92")


@dataclass(frozen=True)
class ServiceSpec:
    """What to run: ``argv`` with ``env`` added to the supervisor's environment.

    Services with a higher ``tier`` are stopped first.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    tier: int = 0


class ServiceExited(Exception):
    """A service exited while the supervisor expected it to keep running."""

    def __init__(self, name: str, returncode: int) -> None:
        super().__init__(f"{name} exited with status {returncode}")
        self.name = name
        self.returncode = returncode


@dataclass
class Service:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    reader: threading.Thread


class PrefixedOutput:
    """Writes lines to ``stream`` as ``<name padded to width> | <line>``; thread-safe."""

    def __init__(self, stream: TextIO, width: int, colour: bool) -> None:
        self._stream = stream
        self._width = width
        self._colour = colour
        self._lock = threading.Lock()

    def prefix(self, name: str, colour_code: str) -> str:
        label = f"{name:<{self._width}} |"
        return f"\x1b[{colour_code}m{label}\x1b[0m " if self._colour else f"{label} "

    def write_line(self, prefix: str, line: str) -> None:
        # A reader that went away (closed pipe) must not take a service down with it.
        with self._lock, contextlib.suppress(BrokenPipeError, ValueError):
            self._stream.write(prefix + line.rstrip("\r\n") + "\n")
            self._stream.flush()

    def copy_lines(self, prefix: str, source: IO[bytes]) -> None:
        """Copy ``source`` line by line until EOF (runs on a reader thread)."""
        with source:
            for raw in source:
                self.write_line(prefix, raw.decode("utf-8", errors="replace"))


def colour_wanted(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


class Supervisor:
    """Starts services, streams their output, and stops them all on exit.

    Use as a context manager: entering installs handlers so SIGINT, SIGTERM
    and SIGHUP request a stop instead of killing the supervisor; leaving stops
    every service (see the module docstring) and restores the handlers.
    """

    def __init__(
        self,
        output: PrefixedOutput,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> None:
        self._output = output
        self._grace_seconds = grace_seconds
        self._services: list[Service] = []
        self._stop_signal: signal.Signals | None = None
        self._previous_handlers: dict[int, SignalHandler] = {}

    @property
    def stop_requested(self) -> bool:
        return self._stop_signal is not None

    @property
    def stop_signal(self) -> signal.Signals | None:
        """The signal that requested the stop, if one did."""
        return self._stop_signal

    def __enter__(self) -> Supervisor:
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._request_stop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.stop_all()
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        # Only record it: the main loop notices within POLL_SECONDS and stops in order.
        self._stop_signal = signal.Signals(signum)

    def say(self, message: str) -> None:
        """Print a line of the supervisor's own, under the same lock as service output."""
        self._output.write_line(self._output.prefix("minimq", "1"), message)

    def start(self, spec: ServiceSpec) -> Service:
        """Start ``spec`` in its own process group, guarded against outliving us."""
        guarded = [
            sys.executable,
            "-m",
            "minimq.cli.orphan_guard",
            str(os.getpid()),
            "--",
            *spec.argv,
        ]
        process = subprocess.Popen(
            guarded,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Services are Python programs; unbuffered output keeps their lines live.
            env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
            process_group=0,
        )
        assert process.stdout is not None
        prefix = self._output.prefix(spec.name, COLOURS[len(self._services) % len(COLOURS)])
        reader = threading.Thread(
            target=self._output.copy_lines,
            args=(prefix, process.stdout),
            name=f"output-{spec.name}",
            daemon=True,
        )
        reader.start()
        service = Service(spec, process, reader)
        self._services.append(service)
        return service

    def _check_running(self) -> None:
        for service in self._services:
            returncode = service.process.poll()
            if returncode is not None:
                raise ServiceExited(service.spec.name, returncode)

    def wait_for(self, condition: Callable[[], bool], timeout: float, description: str) -> bool:
        """Poll ``condition`` until it holds (True) or a stop is requested (False).

        Raises :class:`ServiceExited` if a service exits meanwhile and
        :class:`TimeoutError` naming ``description`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not self.stop_requested:
            self._check_running()
            if condition():
                return True
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{description} did not happen within {timeout:g} s")
            time.sleep(POLL_SECONDS)
        return False

    def supervise(self) -> None:
        """Block until a stop is requested; raise :class:`ServiceExited` if a service exits."""
        while not self.stop_requested:
            self._check_running()
            time.sleep(POLL_SECONDS)

    def stop_all(self) -> None:
        """Stop every service, highest tier first; each tier gets the grace period."""
        for tier in sorted({service.spec.tier for service in self._services}, reverse=True):
            self._stop_tier([s for s in self._services if s.spec.tier == tier])
        for service in self._services:
            service.reader.join(timeout=1.0)
        self._services.clear()

    def _stop_tier(self, services: list[Service]) -> None:
        for service in services:
            signal_group(service.process, signal.SIGTERM)
        deadline = time.monotonic() + self._grace_seconds
        for service in services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(max(0.0, deadline - time.monotonic()))
        for service in services:
            if service.process.poll() is None:
                self.say(
                    f"{service.spec.name} did not stop within {self._grace_seconds:g} s; killing it"
                )
                signal_group(service.process, signal.SIGKILL)
                service.process.wait()


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the process group led by ``process`` (it and anything it spawned)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
