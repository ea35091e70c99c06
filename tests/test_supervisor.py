"""The supervisor and the orphan guard, driven with small stand-in child programs."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from minimq.cli.supervisor import PrefixedOutput, ServiceExited, ServiceSpec, Supervisor

PYTHON = sys.executable


def python_service(name: str, code: str, tier: int = 0) -> ServiceSpec:
    return ServiceSpec(name, [PYTHON, "-c", textwrap.dedent(code)], tier=tier)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


SLEEPER = "import time\nwhile True: time.sleep(0.1)"


def test_every_line_is_prefixed_with_the_padded_service_name() -> None:
    stream = io.StringIO()
    output = PrefixedOutput(stream, width=8, colour=False)
    with Supervisor(output) as supervisor:
        supervisor.start(python_service("a", "print('hello'); print('world')\n" + SLEEPER))
        supervisor.start(python_service("longname", "print('hi')\n" + SLEEPER))
        assert supervisor.wait_for(lambda: stream.getvalue().count("\n") >= 3, 10, "output")
    lines = stream.getvalue().splitlines()
    assert "a        | hello" in lines
    assert "a        | world" in lines
    assert "longname | hi" in lines


def test_colour_prefix_uses_ansi_escapes() -> None:
    prefix = PrefixedOutput(io.StringIO(), width=6, colour=True).prefix("ui", "36")
    assert prefix == "\x1b[36mui     |\x1b[0m "


def test_a_service_that_exits_is_reported_and_the_rest_are_stopped() -> None:
    output = PrefixedOutput(io.StringIO(), width=6, colour=False)
    with pytest.raises(ServiceExited) as info, Supervisor(output) as supervisor:
        sleeper = supervisor.start(python_service("sleeper", SLEEPER))
        supervisor.start(python_service("quits", "import sys; sys.exit(3)"))
        supervisor.supervise()
    assert info.value.name == "quits"
    assert info.value.returncode == 3
    assert sleeper.process.returncode is not None


def test_a_service_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    stream = io.StringIO()
    output = PrefixedOutput(stream, width=8, colour=False)
    stubborn = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('ready', flush=True)
        while True: time.sleep(0.1)
    """
    started = time.monotonic()
    with Supervisor(output, grace_seconds=0.5) as supervisor:
        service = supervisor.start(python_service("stubborn", stubborn))
        supervisor.wait_for(lambda: "ready" in stream.getvalue(), 10, "ready")
    assert service.process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10
    assert "stubborn did not stop within 0.5 s; killing it" in stream.getvalue()


def test_higher_tiers_are_stopped_before_lower_ones(tmp_path: Path) -> None:
    record = """
        import pathlib, signal, sys, time
        def stop(signum, frame):
            pathlib.Path(sys.argv[1]).write_text(repr(time.monotonic()))
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        pathlib.Path(sys.argv[1] + '.ready').touch()
        while True: time.sleep(0.01)
    """
    output = PrefixedOutput(io.StringIO(), width=6, colour=False)
    with Supervisor(output) as supervisor:
        for name, tier in (("broker", 0), ("ui", 1)):
            argv = [PYTHON, "-c", textwrap.dedent(record), str(tmp_path / name)]
            supervisor.start(ServiceSpec(name, argv, tier=tier))
        ready = [tmp_path / "broker.ready", tmp_path / "ui.ready"]
        supervisor.wait_for(lambda: all(p.exists() for p in ready), 10, "ready")
    stopped_ui = float((tmp_path / "ui").read_text())
    stopped_broker = float((tmp_path / "broker").read_text())
    assert stopped_ui < stopped_broker


def test_environment_is_added_to_the_services() -> None:
    stream = io.StringIO()
    output = PrefixedOutput(stream, width=3, colour=False)
    code = "import os; print(os.environ['GREETING'], os.environ['PYTHONUNBUFFERED'])\n" + SLEEPER
    spec = ServiceSpec("env", [PYTHON, "-c", code], env={"GREETING": "hello"})
    with Supervisor(output) as supervisor:
        supervisor.start(spec)
        supervisor.wait_for(lambda: "hello" in stream.getvalue(), 10, "output")
    assert "env | hello 1" in stream.getvalue().splitlines()


def test_a_stop_signal_ends_supervise_and_stops_the_services() -> None:
    output = PrefixedOutput(io.StringIO(), width=7, colour=False)
    with Supervisor(output) as supervisor:
        service = supervisor.start(python_service("sleeper", SLEEPER))
        os.kill(os.getpid(), signal.SIGINT)
        supervisor.supervise()
        assert supervisor.stop_signal == signal.SIGINT
    assert service.process.returncode is not None


def test_signal_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with Supervisor(PrefixedOutput(io.StringIO(), width=1, colour=False)):
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) == before


# The orphan guard ---------------------------------------------------------------------------

PARENT = """
import subprocess, sys, time
guard = [sys.executable, "-m", "minimq.cli.orphan_guard", "--mode", sys.argv[1],
         str(__import__("os").getpid()), "--", sys.executable, "-c",
         "import os, time\\nprint(os.getpid(), flush=True)\\nwhile True: time.sleep(0.1)"]
child = subprocess.Popen(guard, stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
while True: time.sleep(0.1)
"""


@pytest.mark.parametrize("mode", ["prctl", "poll"])
def test_guarded_command_dies_with_its_killed_parent(mode: str) -> None:
    if mode == "prctl" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG exists only on Linux")
    with subprocess.Popen(
        [PYTHON, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            command_pid = int(parent.stdout.readline())
            assert not gone(command_pid)
        finally:
            parent.kill()
    wait_until(lambda: gone(command_pid), timeout=5)


def test_guard_refuses_to_start_when_its_parent_is_already_gone() -> None:
    not_our_parent = str(os.getpid() + 1_000_000)
    result = subprocess.run(
        [PYTHON, "-m", "minimq.cli.orphan_guard", not_our_parent, "--", PYTHON, "-c", "print(1)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
