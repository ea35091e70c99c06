"""Static checks of the Dockerfile and docker-compose.yaml (no Docker engine needed).

- ``docker-compose config`` validates the compose file against the Compose
  schema, as Compose itself would before starting anything;
- hadolint lints the Dockerfile;
- every command, flag and environment variable the two files hand to
  ``minimq`` is one the CLI actually honours: the environment is applied, the
  real argument parser parses the command, and the value must come out in
  the parsed options.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from minimq.cli.main import build_parser
from tests.support.processes import BrokerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
SERVICES = ("broker", "producer", "consumer")


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
        monkeypatch.setenv(key, value)
    args = vars(build_parser().parse_args(argv))
    parsed = {repr(v) for v in args.values()} | {str(v) for v in args.values()}
    parsed |= {",".join(map(str, v)) for v in args.values() if isinstance(v, list | tuple)}
    for key, value in environment.items():
        if key.startswith("PYTHON") or not value:
            continue  # the interpreter's own settings; empty means unset
        forms = {value, repr(value)}
        if re.fullmatch(r"[0-9.]+", value):
            forms |= {repr(float(value)), repr(int(float(value)))}
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


def test_the_three_services_are_there() -> None:
    assert set(compose()["services"]) == set(SERVICES)


def test_broker_keeps_its_data_on_a_named_volume_and_has_a_healthcheck() -> None:
    broker = service("broker")
    assert "minimq-data:/data" in broker["volumes"]
    assert "minimq-data" in compose()["volumes"]
    assert any(port.endswith(":5000:5000") for port in broker["ports"])
    assert "/healthz" in " ".join(broker["healthcheck"]["test"])
    assert broker["command"][broker["command"].index("--host") + 1] == "0.0.0.0"


@pytest.mark.parametrize("name", ["producer", "consumer"])
def test_clients_wait_for_a_healthy_broker(name: str) -> None:
    assert service(name)["depends_on"] == {"broker": {"condition": "service_healthy"}}


def test_producer_is_scalable_and_configured_like_the_original() -> None:
    producer = service("producer")
    # A fixed name or host port would make `--scale producer=3` fail.
    assert "container_name" not in producer
    assert "ports" not in producer
    assert producer["environment"]["BROKER_URL"] == "http://broker:5000"
    assert producer["environment"]["TOPICS"] == "temperature,humidity,pressure"
    assert "INTERVAL_SECONDS" in producer["environment"]


def test_pinned_producer_examples_are_documented() -> None:
    text = COMPOSE_FILE.read_text()
    assert "#     TOPIC: temperature" in text
    assert "#     TOPIC: humidity" in text


def test_ui_is_published_on_8080() -> None:
    assert any(port.endswith(":8080:8080") for port in service("consumer")["ports"])


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


def test_dockerfile_healthcheck_port_variable_is_the_broker_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (healthcheck,) = dockerfile("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "os.environ.get('MINIMQ_PORT', '5000')" in healthcheck
    assert_cli_honours(["broker"], {"MINIMQ_PORT": "5123"}, monkeypatch)


def test_dockerfile_healthcheck_command_passes_on_a_live_broker_only(
    broker: BrokerProcess,
) -> None:
    (healthcheck,) = dockerfile("HEALTHCHECK")
    argv = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :])
    assert argv[0] == "python"

    def check(port: int) -> int:
        env = {**os.environ, "MINIMQ_PORT": str(port)}
        command = [sys.executable, *argv[1:]]
        result = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
        return result.returncode

    assert check(broker.port) == 0
    assert check(free_port()) != 0


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    stages = dockerfile("FROM")
    assert len(stages) == 2
    assert all("-slim" in stage for stage in stages)
    (user,) = dockerfile("USER")
    assert not user.startswith(("0", "root"))
    assert "--from=build" in " ".join(dockerfile("COPY"))
