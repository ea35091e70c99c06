"""docker-compose.cluster.yaml and the image's NATS health check, without an engine.

- ``docker-compose config`` validates the file as Compose would before starting anything;
- the shape: three NATS nodes from one configuration that ``nats-server`` accepts, each its own
  volume, two gateways over all three nodes, clients given both gateways, each tier waiting
  for the one under it to be healthy;
- every command and variable handed to ``minimq`` is one the CLI honours;
- the image's health check follows a real ``nats-server``: healthy once it is current with a
  JetStream meta leader, unhealthy while a clustered node has no leader.

The same file on a real engine: ``make docker-check`` (``deploy/docker/cluster_check.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from minimq.cli.nats_cluster import find_nats_server
from tests.support.processes import START_TIMEOUT, free_port
from tests.test_docker import assert_cli_honours

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.cluster.yaml"
NATS_CONF = ROOT / "deploy" / "docker" / "nats-cluster.conf"
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"
NODES = ("nats-1", "nats-2", "nats-3")
GATEWAYS = ("gateway-1", "gateway-2")
CLIENTS = ("producer", "consumer")


def services() -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return loaded


def test_docker_compose_config_validates_the_file() -> None:
    binary = shutil.which("docker-compose")
    assert binary is not None, "docker-compose is missing (apt-get install docker-compose)"
    result = subprocess.run(
        [binary, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_services_are_there_and_one_builds_the_image() -> None:
    assert set(services()) == {*NODES, *GATEWAYS, *CLIENTS}
    builders = [name for name, service in services().items() if "build" in service]
    assert builders == ["nats-1"]  # the first to start
    images = {service["image"] for service in services().values()}
    assert images == {"${MINIMQ_IMAGE:-minimq:latest}"}


def test_no_service_overrides_the_images_health_check_test() -> None:
    for name, service in services().items():
        assert "test" not in service.get("healthcheck", {}), name
        assert not service.get("healthcheck", {}).get("disable", False), name


@pytest.mark.parametrize("name", NODES)
def test_each_node_runs_the_shared_config_under_its_own_name_and_volume(name: str) -> None:
    node = services()[name]
    assert node["entrypoint"] == ["nats-server"]
    assert node["command"] == ["-c", "/etc/nats/nats.conf"]
    assert node["environment"] == {"NATS_NAME": name}
    assert node["volumes"] == [
        "./deploy/docker/nats-cluster.conf:/etc/nats/nats.conf:ro",
        f"{name}-data:/data",
    ]
    assert "ports" not in node  # only the gateways talk to NATS
    assert yaml.safe_load(COMPOSE_FILE.read_text())["volumes"].keys() == {
        f"{n}-data" for n in NODES
    }


def test_the_node_config_fsyncs_every_write_routes_to_every_node_and_is_valid() -> None:
    text = NATS_CONF.read_text()
    assert re.search(r"^\s*sync_interval: always$", text, flags=re.MULTILINE)
    assert re.search(r"^\s*store_dir: /data$", text, flags=re.MULTILINE)
    assert re.findall(r"nats-route://([a-z0-9-]+):6222", text) == list(NODES)
    for name in NODES:
        result = subprocess.run(
            [find_nats_server(), "-t", "-c", str(NATS_CONF)],
            env={**os.environ, "NATS_NAME": name},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", GATEWAYS)
def test_gateways_use_every_node_and_wait_for_them_all(name: str) -> None:
    gateway = services()[name]
    environment = gateway["environment"]
    assert environment["MINIMQ_BACKEND"].split(",") == [f"nats://{n}:4222" for n in NODES]
    assert environment["MINIMQ_REPLICAS"] == "3"
    assert gateway["depends_on"] == {n: {"condition": "service_healthy"} for n in NODES}


def test_only_the_first_gateway_runs_the_kafka_listener() -> None:
    assert services()["gateway-1"]["environment"]["MINIMQ_KAFKA_PORT"] == "9092"
    assert services()["gateway-2"]["environment"]["MINIMQ_KAFKA_PORT"] == "0"


@pytest.mark.parametrize("name", CLIENTS)
def test_clients_are_given_both_gateways_and_wait_for_them(name: str) -> None:
    client = services()[name]
    environment = client["environment"]
    url = environment.get("BROKER_URL") or environment["MINIMQ_BROKER_URL"]
    assert url.split(",") == [f"http://{g}:5000" for g in GATEWAYS]
    assert client["depends_on"] == {g: {"condition": "service_healthy"} for g in GATEWAYS}


@pytest.mark.parametrize("name", [*GATEWAYS, *CLIENTS])
def test_commands_and_environment_exist_in_the_cli(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = services()[name]
    environment = {
        key: re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in service["environment"].items()
    }
    assert_cli_honours(list(service["command"]), environment, monkeypatch)


# -- the image's health check on a real nats-server ---------------------------


def healthcheck(pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), "--pid", str(pid)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start_nats(tmp_path: Path, config: str, monitor: int) -> subprocess.Popen[bytes]:
    path = tmp_path / "node.conf"
    path.write_text(config)
    with (tmp_path / "node.log").open("wb") as log:
        return subprocess.Popen(
            [find_nats_server(), "-c", str(path), "-m", str(monitor)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def test_healthcheck_follows_a_nats_server_to_its_monitoring_healthz(tmp_path: Path) -> None:
    monitor = free_port()
    config = f'listen: "127.0.0.1:{free_port()}"\njetstream {{ store_dir: "{tmp_path}/js" }}\n'
    node = start_nats(tmp_path, config, monitor)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        result = healthcheck(node.pid)
        while result.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            result = healthcheck(node.pid)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"127.0.0.1:{monitor}/healthz: 200" in result.stdout
    finally:
        node.kill()
        node.wait()


def test_healthcheck_fails_a_clustered_node_without_a_meta_leader(tmp_path: Path) -> None:
    monitor, route = free_port(), free_port()
    config = (
        f'server_name: lonely\nlisten: "127.0.0.1:{free_port()}"\n'
        f'jetstream {{ store_dir: "{tmp_path}/js" }}\n'
        f'cluster {{ name: c, listen: "127.0.0.1:{route}",'
        f' routes: ["nats-route://127.0.0.1:{route}", "nats-route://127.0.0.1:{free_port()}"] }}\n'
    )
    node = start_nats(tmp_path, config, monitor)
    try:
        # Wait until the monitoring port answers at all, then expect a refusal, not a timeout.
        deadline = time.monotonic() + START_TIMEOUT
        result = healthcheck(node.pid)
        while "503" not in result.stdout and time.monotonic() < deadline:
            time.sleep(0.5)
            result = healthcheck(node.pid)
        assert result.returncode == 1
        assert f"127.0.0.1:{monitor}/healthz" in result.stdout and "503" in result.stdout
    finally:
        node.kill()
        node.wait()
