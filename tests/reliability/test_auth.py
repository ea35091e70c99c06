"""With a token, every endpoint but /healthz needs it; the UI and producers send theirs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.processes import BrokerProcess, free_port, wait_for_http

TOKEN = "s3cret-token"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
BAD_HEADERS = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
]
OPENAPI = orjson.loads((Path(__file__).parents[2] / "src/minimq/server/openapi.json").read_bytes())
OPERATIONS = [
    (method.upper(), path)
    for path, item in OPENAPI["paths"].items()
    for method in item
    if method != "parameters"
]
PATH_VALUES = {"{topic}": "guarded", "{group}": "g", "{partition}": "0"}


def concrete(path: str) -> str:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    return path


@pytest.fixture(scope="module")
def guarded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("auth") / "data"
    data.mkdir()
    with BrokerProcess(data, ["--token", TOKEN]) as broker:
        httpx.post(
            f"{broker.url}/v1/topics/guarded/records",
            json={"records": [{"value": 1}]},
            headers=GOOD,
        ).raise_for_status()
        yield broker


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_endpoint_but_healthz_needs_the_token(
    guarded_broker: BrokerProcess, method: str, path: str
) -> None:
    url = guarded_broker.url + concrete(path)
    with httpx.Client(timeout=10) as client:
        for headers in BAD_HEADERS:
            response = client.request(method, url, headers=headers, params={"token": TOKEN})
            if path == "/healthz":
                assert response.status_code == 200
                continue
            assert response.status_code == 401, (headers, response.text)
            assert response.json()["error"]["code"] == "UNAUTHORIZED"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if path.endswith("/stream"):
            with client.stream(method, url, headers=GOOD) as streamed:
                assert streamed.status_code == 200
            return
        if method == "DELETE":  # keep the seeded topic for the other operations
            url = url.replace("guarded", "doomed")
        allowed = client.request(method, url, headers=GOOD, json={})
        assert allowed.status_code != 401, allowed.text


def test_the_ui_passes_its_token(guarded_broker: BrokerProcess, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "ui.log").open("wb")
    ui = subprocess.Popen(
        [sys.executable, "-m", "minimq", "ui", "--host", "127.0.0.1", "--port", str(port),
         "--broker-url", guarded_broker.url, "--token", TOKEN],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=20, process=ui)
        page = httpx.get(f"http://127.0.0.1:{port}/topics/guarded", timeout=10)
        assert page.status_code == 200, page.text[:500]
    finally:
        ui.terminate()
        ui.wait(10)
        log.close()


def test_producers_pass_their_token(guarded_broker: BrokerProcess) -> None:
    producer = subprocess.Popen(
        [sys.executable, "-m", "minimq", "producer", "--broker-url", guarded_broker.url,
         "--topic", "simulated", "--interval", "0.1", "--token", TOKEN],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        messages = 0
        while time.monotonic() < deadline and messages < 3:
            time.sleep(0.2)
            info = httpx.get(f"{guarded_broker.url}/v1/topics/simulated", headers=GOOD)
            messages = info.json()["messages"] if info.status_code == 200 else 0
        assert messages >= 3
    finally:
        producer.terminate()
        producer.wait(10)


def test_a_non_loopback_bind_without_token_warns_loudly(data_dir: Path) -> None:
    # The data directory is locked by a running broker, so this one warns, then
    # exits before it could bind anything beyond 127.0.0.1.
    with BrokerProcess(data_dir) as holder:
        result = subprocess.run(
            [sys.executable, "-m", "minimq", "broker", "--host", "0.0.0.0",
             "--port", str(free_port()), "--data-dir", str(holder.data_dir)],
            capture_output=True,
            check=False,
            timeout=30,
            env={**os.environ, "MINIMQ_TOKEN": ""},
        )  # fmt: skip
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode != 0
    assert "WITHOUT a token" in output, output
