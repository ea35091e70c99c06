"""``minimq up`` end to end: the real broker, producers and UI as child processes.

Each test runs ``python -m minimq up`` in its own session (so a signal to its
process group cannot reach pytest) on free ports with a temporary data
directory, and checks through the broker's HTTP API and with psutil.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.processes import free_port

TOPICS = {"temperature", "humidity", "pressure"}
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def up_argv(data_dir: Path, broker_port: int, ui_port: int, *extra: str) -> list[str]:
    ports = ["--broker-port", str(broker_port), "--ui-port", str(ui_port)]
    return [sys.executable, "-m", "minimq", "up", "--data-dir", str(data_dir), *ports, *extra]


def role(process: psutil.Process) -> str:
    """``broker``, ``producer`` or ``ui``: the command of ``python -m minimq COMMAND ...``."""
    argv = process.cmdline()
    return argv[argv.index("minimq") + 1]


class UpProcess:
    """One ``minimq up`` run; its combined output goes to ``log_path``."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.broker_port = free_port()
        self.ui_port = free_port()
        self.log_path = data_dir.parent / f"up-{self.broker_port}.log"
        argv = up_argv(data_dir, self.broker_port, self.ui_port, "--interval", "0.2", *extra)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.descendants: list[psutil.Process] = []

    @property
    def broker_url(self) -> str:
        return f"http://127.0.0.1:{self.broker_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"minimq up exited early:\n{self.log()}"
            assert time.monotonic() < deadline, f"{what} not within {timeout} s:\n{self.log()}"
            time.sleep(0.1)

    def message_counts(self) -> dict[str, int]:
        try:
            topics = httpx.get(f"{self.broker_url}/v1/topics", timeout=2).json()["topics"]
        except httpx.HTTPError:
            return {}
        return {topic["name"]: topic["messages"] for topic in topics}

    def ui_answers(self) -> bool:
        try:
            return httpx.get(f"{self.ui_url}/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_until_running(self) -> None:
        """UI answers, the banner is out and every sensor topic has readings; remember
        the children."""
        self.wait_until(self.ui_answers, START_TIMEOUT, "UI answering")
        # `up` polls the UI itself before it prints its banner; a stop sent before
        # that point would (rightly) end the run without one.
        self.wait_until(lambda: "MiniMQ is up" in self.log(), START_TIMEOUT, "the banner")
        self.wait_until(
            lambda: all(self.message_counts().get(topic, 0) > 0 for topic in TOPICS),
            START_TIMEOUT,
            "all three topics filling",
        )
        self.descendants = psutil.Process(self.process.pid).children(recursive=True)

    def child(self, wanted_role: str) -> psutil.Process:
        (found,) = [p for p in self.descendants if role(p) == wanted_role]
        return found

    def wait_for_exit(self) -> int:
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"minimq up did not stop within {STOP_TIMEOUT} s:\n{self.log()}")

    def survivors(self, timeout: float = STOP_TIMEOUT) -> list[str]:
        """The command lines of descendants still running after ``timeout``."""
        _, alive = psutil.wait_procs(self.descendants, timeout=timeout)
        survivors = []
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.status() != psutil.STATUS_ZOMBIE:
                    survivors.append(" ".join(process.cmdline()))
        return survivors

    def kill_everything(self) -> None:
        """Teardown: nothing of this run may outlive the test, whatever it checked."""
        if self.process.poll() is None:
            self.descendants = psutil.Process(self.process.pid).children(recursive=True)
            self.process.kill()
        self.process.wait()
        for proc in self.descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., UpProcess]]:
    runs: list[UpProcess] = []

    def start(data_dir: Path = tmp_path / "data", *extra: str) -> UpProcess:
        run = UpProcess(data_dir, *extra)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill_everything()


def stop_parent_with_sigint(run: UpProcess) -> None:
    os.kill(run.process.pid, signal.SIGINT)


def stop_group_with_sigint(run: UpProcess) -> None:
    # What Ctrl-C in a terminal does: SIGINT to the whole foreground process group.
    os.killpg(run.process.pid, signal.SIGINT)


def stop_parent_with_sigterm(run: UpProcess) -> None:
    os.kill(run.process.pid, signal.SIGTERM)


@pytest.mark.parametrize(
    "stop", [stop_parent_with_sigint, stop_group_with_sigint, stop_parent_with_sigterm]
)
def test_up_runs_everything_and_a_stop_signal_stops_every_child(
    start_up: Callable[..., UpProcess], stop: Callable[[UpProcess], None]
) -> None:
    run = start_up()
    run.wait_until_running()
    # The orphan guard exec()s into each service, so these are all the processes there are.
    assert sorted(role(p) for p in run.descendants) == ["broker"] + ["producer"] * 3 + ["ui"]

    stop(run)

    assert run.wait_for_exit() == 0
    assert run.survivors() == []
    log = run.log()
    assert f"web UI      {run.ui_url}" in log
    assert f"broker API  {run.broker_url}" in log
    for prefix in ("broker     | ", "producer-1 | ", "producer-3 | ", "ui         | "):
        assert prefix in log
    assert "received; stopping every service" in log
    assert "Traceback" not in log


def test_a_second_run_sees_the_first_runs_messages_and_sigkill_leaves_no_child(
    start_up: Callable[..., UpProcess], tmp_path: Path
) -> None:
    first = start_up()
    first.wait_until_running()
    stop_parent_with_sigterm(first)
    assert first.wait_for_exit() == 0
    second_started_ms = time.time() * 1000

    second = start_up()
    second.wait_until(lambda: bool(second.message_counts()), START_TIMEOUT, "broker answering")
    oldest = httpx.get(
        f"{second.broker_url}/v1/topics/temperature/partitions/0/records",
        params={"offset": "earliest", "limit": 1},
        timeout=5,
    ).json()["records"]
    assert oldest and oldest[0]["timestamp"] < second_started_ms
    second.wait_until_running()

    os.kill(second.process.pid, signal.SIGKILL)
    second.process.wait()
    assert second.survivors() == [], second.log()[-3000:]


def test_when_the_broker_dies_everything_stops_with_an_error(
    start_up: Callable[..., UpProcess],
) -> None:
    run = start_up()
    run.wait_until_running()
    run.child("broker").kill()

    assert run.wait_for_exit() == 1
    assert run.survivors() == []
    assert "minimq up: broker exited with status" in run.log()


@pytest.mark.parametrize("taken", ["broker", "ui"])
def test_a_taken_port_is_a_one_line_error(taken: str, tmp_path: Path) -> None:
    broker_port, ui_port = free_port(), free_port()
    port = broker_port if taken == "broker" else ui_port
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run(
            up_argv(tmp_path / "data", broker_port, ui_port),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"minimq up: port {port} on 127.0.0.1 (for the {taken}) is already in use; "
        f"stop whatever holds it or choose another with --{taken}-port"
    ]
    assert not (tmp_path / "data").exists()
