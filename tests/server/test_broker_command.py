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
import pytest

from minimq.errors import InvalidConfig
from minimq.server.config import BrokerConfig, advertised_url, nats_servers
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


def test_backend_values_name_the_data_dir_or_a_nats_cluster() -> None:
    assert nats_servers("") is None and nats_servers("  ") is None
    assert nats_servers("nats://h1:4222,h2:4222, nats://h3:4222") == [
        "nats://h1:4222",
        "nats://h2:4222",
        "nats://h3:4222",
    ]
    for wrong in ("http://h1:4222", "h1:4222", "nats://", "nats://h1:4222,,h2:4222"):
        with pytest.raises(InvalidConfig):
            nats_servers(wrong)


def test_an_invalid_backend_or_namespace_is_rejected(tmp_path: Path) -> None:
    result = run_broker("--data-dir", str(tmp_path / "d"), "--backend", "redis://h:6379")
    assert result.returncode == 2
    assert "--backend must be empty" in result.stderr
    result = run_broker("--backend", "nats://127.0.0.1:1", "--nats-namespace", "a.b")
    assert result.returncode == 2
    assert "--nats-namespace" in result.stderr
    result = run_broker("--backend", "nats://127.0.0.1:1", "--replicas", "0")
    assert result.returncode == 2
    assert "--replicas must be positive" in result.stderr


# Runs the broker command in a process where `minimq.jetstream` cannot be imported,
# as in an installation without it.
WITHOUT_JETSTREAM = """
import sys
from importlib.abc import MetaPathFinder

class NoJetStream(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "minimq.jetstream" or name.startswith("minimq.jetstream."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoJetStream())
from minimq.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_nats_backend_without_the_jetstream_package_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_JETSTREAM, "broker", "--backend", "nats://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "cannot open the JetStream backend at nats://127.0.0.1:1" in result.stderr
    assert "the minimq.jetstream package cannot be imported" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "minimq-data").exists(), "no data directory for a NATS backend"


def test_the_advertised_url_defaults_to_host_and_port_and_takes_a_bare_host() -> None:
    assert BrokerConfig(host="10.0.0.5", port=5001).http_url == "http://10.0.0.5:5001"
    assert BrokerConfig(host="0.0.0.0", port=5000).http_url == "http://127.0.0.1:5000"
    assert BrokerConfig(host="::1", port=5000).http_url == "http://[::1]:5000"
    given = BrokerConfig(port=5000, advertised_url="https://gw-1.example:8443/")
    assert given.http_url == "https://gw-1.example:8443"
    # A pod IP from the downward API: scheme and --port are filled in.
    assert BrokerConfig(port=5000, advertised_url="10.1.2.3").http_url == "http://10.1.2.3:5000"
    assert BrokerConfig(port=5000, advertised_url="fd00::7").http_url == "http://[fd00::7]:5000"
    for bad in ["ftp://x", "http://x/path", "http://x:notaport", "http://:80"]:
        with pytest.raises(InvalidConfig):
            advertised_url(bad, 5000)


def test_an_invalid_advertised_url_or_lease_is_rejected(tmp_path: Path) -> None:
    for args in (["--advertised-url", "http://gw/x"], ["--group-lease-ms", "0"]):
        result = run_broker("--data-dir", str(tmp_path / "d"), *args)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert args[0] in result.stderr
