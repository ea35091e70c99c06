"""Checks of the Dockerfile, docker-compose.yaml and the image's health check, without an engine.

- ``docker-compose config`` validates the compose file against the Compose
  schema, as Compose itself would before starting anything;
- hadolint lints the Dockerfile;
- every command, flag and environment variable the two files hand to
  ``minimq`` is one the CLI actually honours: the environment is applied, the
  real argument parser parses the command, and the value must come out in
  the parsed options;
- the image's health check script, run against real broker, UI and producer
  processes;
- the image defects a real engine showed, as far as the files tell them.

The same files run by a real Docker engine: ``make docker-check``
(``deploy/docker/check.py``), which ``.ci/run`` runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from minimq.cli.main import build_parser
from tests.support.processes import START_TIMEOUT, BrokerProcess, free_port, wait_for_http
from tests.ui.browser import running

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"
SERVICES = ("broker", "producer", "host-metrics", "consumer")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def service(name: str) -> dict[str, Any]:
    merged: dict[str, Any] = compose()["services"][name]
    return merged


# The Dockerfile, as (instruction, arguments) with continuation lines joined.
def dockerfile_instructions() -> Iterator[tuple[str, str]]:
    logical = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in logical.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, arguments = stripped.partition(" ")
            yield instruction.upper(), arguments.strip()


def dockerfile(instruction: str) -> list[str]:
    return [args for name, args in dockerfile_instructions() if name == instruction]


def dockerfile_env() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for arguments in dockerfile("ENV"):
        for pair in arguments.split():
            key, _, value = pair.partition("=")
            pairs[key] = value
    return pairs


def assert_cli_honours(
    argv: list[str], environment: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``minimq ARGV`` parses with ``environment`` set, and each variable reaches an option."""
    for key, value in environment.items():
        if key != "PATH":
            monkeypatch.setenv(key, value)
    args = vars(build_parser().parse_args(argv))
    parsed = {repr(v) for v in args.values()} | {str(v) for v in args.values()}
    parsed |= {",".join(map(str, v)) for v in args.values() if isinstance(v, list | tuple)}
    for key, value in environment.items():
        if key.startswith("PYTHON") or key == "PATH" or not value:
            continue  # the interpreter's and the shell's settings; empty means unset
        forms = {value, repr(value)}
        if re.fullmatch(r"[0-9.]+", value):
            forms |= {repr(float(value)), repr(int(float(value)))}
        if value.lower() in ("1", "true", "yes", "on"):
            forms.add("True")  # a switch
        assert forms & parsed, f"{key}={value} did not reach any option of `minimq {argv[0]}`"


def test_docker_compose_config_validates_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed; the schema check cannot run")
    result = subprocess.run(
        [binary, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout or "[]") == []
    assert result.returncode == 0, result.stderr


def test_the_services_are_there() -> None:
    assert set(compose()["services"]) == set(SERVICES)


def test_broker_keeps_its_data_on_a_named_volume_and_uses_the_images_healthcheck() -> None:
    broker = service("broker")
    assert broker["volumes"] == ["minimq-data:/data"]
    assert "minimq-data" in compose()["volumes"]
    # No test of its own: the image's check, polled faster for depends_on.
    assert "test" not in broker["healthcheck"]
    assert broker["command"][broker["command"].index("--host") + 1] == "0.0.0.0"


def test_only_the_broker_has_a_volume() -> None:
    """Defect 3: a VOLUME in the image gave every container an anonymous volume."""
    assert not dockerfile("VOLUME")
    for name in SERVICES:
        mounts = service(name).get("volumes", [])
        if name == "broker":
            continue
        # The host-metric producer reads the host's /proc: a read-only bind mount.
        assert mounts == (["/proc:/host_proc:ro"] if name == "host-metrics" else []), name


@pytest.mark.parametrize("name", ["producer", "host-metrics", "consumer"])
def test_clients_wait_for_a_healthy_broker(name: str) -> None:
    assert service(name)["depends_on"] == {"broker": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", SERVICES)
def test_no_service_overrides_the_images_health_check_test(name: str) -> None:
    """Defect 1: the image's check follows the command, so no service needs its own."""
    assert "test" not in service(name).get("healthcheck", {})
    assert not service(name).get("healthcheck", {}).get("disable", False)


def test_producer_is_scalable_and_configured_like_the_original() -> None:
    producer = service("producer")
    # A fixed name or host port would make `--scale producer=3` fail.
    assert "container_name" not in producer
    assert "ports" not in producer
    assert producer["environment"]["BROKER_URL"] == "http://broker:5000"
    assert producer["environment"]["TOPICS"] == "temperature,humidity,pressure"
    assert "INTERVAL_SECONDS" in producer["environment"]


def test_host_metric_producer_reads_the_hosts_proc_like_the_original() -> None:
    host = service("host-metrics")
    assert host["command"] == ["producer", "--source", "host"]
    assert host["environment"]["HOST_MODE"] == "true"
    assert "NODE_NAME" in host["environment"]


def test_pinned_producer_examples_are_documented() -> None:
    text = COMPOSE_FILE.read_text()
    assert "#     TOPIC: temperature" in text
    assert "#     TOPIC: humidity" in text


@pytest.mark.parametrize(
    ("name", "variable", "port"),
    [
        ("broker", "MINIMQ_BROKER_PORT", 5000),
        ("broker", "MINIMQ_KAFKA_PORT", 9092),
        ("consumer", "MINIMQ_UI_PORT", 8080),
    ],
)
def test_host_ports_and_address_can_be_changed(name: str, variable: str, port: int) -> None:
    """Defect 5: only the publish address could be changed, not the host port."""
    expected = f"${{MINIMQ_PUBLISH_ADDRESS:-127.0.0.1}}:${{{variable}:-{port}}}:{port}"
    assert expected in service(name)["ports"]


def test_kafka_clients_outside_are_told_the_published_address() -> None:
    env = service("broker")["environment"]
    assert env["MINIMQ_KAFKA_ADVERTISED_HOST"] == "${MINIMQ_KAFKA_ADVERTISED_HOST:-localhost}"
    assert env["MINIMQ_KAFKA_ADVERTISED_PORT"] == "${MINIMQ_KAFKA_PORT:-9092}"


@pytest.mark.parametrize("name", SERVICES)
def test_compose_commands_and_environment_exist_in_the_cli(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = service(name)
    environment = {}
    for key, value in spec.get("environment", {}).items():
        # ${VAR:-default} is filled in by Compose from the host: check the default,
        # or a sample value when the default is empty.
        default = re.fullmatch(r"\$\{\w+:-(.*)\}", str(value))
        environment[key] = (default.group(1) or f"example-{key.lower()}") if default else value
    assert_cli_honours(list(spec["command"]), environment, monkeypatch)


def test_dockerfile_command_and_environment_exist_in_the_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (entrypoint,) = dockerfile("ENTRYPOINT")
    (command,) = dockerfile("CMD")
    assert json.loads(entrypoint) == ["minimq"]
    assert_cli_honours(json.loads(command), dockerfile_env(), monkeypatch)


def test_dockerfile_healthcheck_runs_the_script_it_copies() -> None:
    (healthcheck,) = dockerfile("HEALTHCHECK")
    argv = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :])
    copies = [args.split() for args in dockerfile("COPY")]
    assert ["deploy/docker/healthcheck.py", argv[1]] in copies
    assert argv[0] == "python"
    assert "!deploy/docker/healthcheck.py" in (ROOT / ".dockerignore").read_text().splitlines()


def healthcheck(pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), "--pid", str(pid)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_healthcheck_follows_the_broker_command(broker: BrokerProcess) -> None:
    assert broker.process is not None
    result = healthcheck(broker.process.pid)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f":{broker.port}/healthz" in result.stdout


def test_healthcheck_follows_the_ui_command_and_needs_no_broker(tmp_path: Path) -> None:
    """Defect 1: the UI turned unhealthy; now its own /healthz answers, broker or not."""
    port = free_port()
    nowhere = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "minimq", "ui", "--port", str(port), "--broker-url", nowhere]
    with running(command, tmp_path / "ui.log", {"MINIMQ_TOKEN": "secret"}) as ui:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", START_TIMEOUT, ui)
        result = healthcheck(ui.pid)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f":{port}/healthz" in result.stdout
        ui.terminate()
        # Defect 2: the UI ended by SIGTERM's default action (exit 143).
        assert ui.wait(30) == 0


def test_healthcheck_passes_a_running_producer(tmp_path: Path) -> None:
    env = {"BROKER_URL": f"http://127.0.0.1:{free_port()}", "INTERVAL_SECONDS": "1"}
    command = [sys.executable, "-m", "minimq", "producer"]
    with running(command, tmp_path / "producer.log", env) as producer:
        result = healthcheck(producer.pid)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "no port to probe" in result.stdout


def test_healthcheck_fails_when_the_port_does_not_answer(tmp_path: Path) -> None:
    # A process whose command line is a broker's, listening nowhere.
    port = free_port()
    marker = uuid.uuid4().hex
    command = [sys.executable, "-c", "import time; time.sleep(120)", "minimq", "broker"]
    with running([*command, "--port", str(port), marker], tmp_path / "fake.log", {}) as fake:
        result = healthcheck(fake.pid)
    assert result.returncode == 1
    assert f":{port}/healthz" in result.stdout


def test_healthcheck_fails_without_a_minimq_process() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            assert healthcheck(other.pid).returncode == 1
        finally:
            other.kill()


def test_dockerfile_is_multi_stage_from_one_base_and_runs_as_a_non_root_user() -> None:
    stages = dockerfile("FROM")
    assert stages == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    assert "BASE_IMAGE=python:3.12-slim" in dockerfile("ARG")
    (user,) = dockerfile("USER")
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user)


def test_the_final_stage_copies_the_environment_not_the_wheels() -> None:
    """Defect 4: a COPY of /wheels left a 15 MB layer the next step could not delete."""
    final = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    copies = [line for line in final.splitlines() if line.startswith("COPY")]
    assert "COPY --from=build /opt/minimq /opt/minimq" in copies
    assert not [line for line in copies if "wheel" in line]


def test_the_user_is_created_without_the_system_uid_warning() -> None:
    """Defect 5: ``useradd --system --uid 10001`` warns (uid above SYS_UID_MAX)."""
    (create,) = [args for args in dockerfile("RUN") if "useradd" in args]
    assert "--system" not in create
    assert "--uid 10001" in create


def test_ci_runs_the_docker_check_with_a_real_engine() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make docker-check" in ci
    for package in ("docker.io", "docker-compose", "debootstrap"):
        assert package in ci
    assert "docker-check:" in (ROOT / "Makefile").read_text()


def test_one_service_builds_the_image_the_others_run() -> None:
    # Each service with a build section would build the same image again.
    image = service("broker")["image"]
    assert service("broker")["build"]["args"]["BASE_IMAGE"].endswith(":-python:3.12-slim}")
    for name in SERVICES:
        assert service(name)["image"] == image
        assert ("build" in service(name)) == (name == "broker"), name
