"""``minimq broker`` start-up failures are one clear line and exit code 1."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from minimq.server.config import BrokerConfig
from tests.support.processes import BrokerProcess, free_port, wait_for_http


def run_broker(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minimq", "broker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_broker("--data-dir", str(tmp_path / "d"), "--port", str(port))
    assert result.returncode == 1
    assert "cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr


def test_locked_data_dir_is_a_clear_error(broker: BrokerProcess) -> None:
    result = run_broker("--data-dir", str(broker.data_dir), "--port", str(free_port()))
    assert result.returncode == 1
    assert "cannot open data directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_fsync_policy_is_rejected(tmp_path: Path) -> None:
    result = run_broker("--data-dir", str(tmp_path / "d"), "--fsync", "sometimes")
    assert result.returncode == 2
    assert "fsync policy" in result.stderr


def test_only_a_public_host_without_token_counts_as_exposed() -> None:
    assert BrokerConfig(host="0.0.0.0").exposed_without_token
    assert BrokerConfig(host="192.168.1.10").exposed_without_token
    assert not BrokerConfig(host="0.0.0.0", token="t").exposed_without_token
    assert not BrokerConfig(host="127.0.0.1").exposed_without_token
    assert not BrokerConfig(host="::1").exposed_without_token


def test_sigterm_shuts_down_cleanly_with_exit_0(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minimq",
            "broker",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=process)
        produced = httpx.post(f"http://127.0.0.1:{port}/produce", json={"topic": "t", "message": 1})
        assert produced.status_code == 201
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "broker listening on http://127.0.0.1" in stderr
    assert "topic created: t" in stderr
    assert "broker stopped" in stderr


def test_sigterm_ends_long_polls_and_streams_promptly(broker: BrokerProcess) -> None:
    httpx.post(f"{broker.url}/v1/topics", json={"name": "idle"})
    results: dict[str, object] = {}

    def long_poll() -> None:
        results["poll"] = httpx.get(
            f"{broker.url}/v1/topics/idle/partitions/0/records",
            params={"offset": "latest", "wait_ms": 30_000},
            timeout=60,
        )

    def stream() -> None:
        with httpx.stream("GET", f"{broker.url}/v1/topics/idle/stream", timeout=60) as response:
            results["stream"] = list(response.iter_lines())

    threads = [threading.Thread(target=long_poll), threading.Thread(target=stream)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert broker.stop() == 0
    for thread in threads:
        thread.join(timeout=20)
    assert time.monotonic() - started < 8
    poll = results["poll"]
    assert isinstance(poll, httpx.Response)
    assert poll.status_code == 200
    assert poll.json()["records"] == []
    assert results["stream"] == [": connected", ""]
