"""With a token, every endpoint but /healthz needs it; the UI and producers send theirs.

One reading of ``Authorization`` on both ways in (the produce lane and aiohttp):
the Bearer scheme in any case, one or more spaces before the token, blanks
around the value ignored, and the token compared as the bytes that were sent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from minimq.server.gate import bearer_credentials
from tests.server.test_produce_lane import (
    Connection,
    comparable,
    connector,
    exact,
    through_aiohttp,
    through_lane,
)
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
        wait_for_http(f"http://127.0.0.1:{port}/login", timeout=20, process=ui)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as web:
            # The token is the UI's login too: nobody reaches the broker through it without.
            assert web.get("/topics/guarded").status_code == 302
            form = web.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert csrf is not None
            web.post("/login", data={"csrf_token": csrf.group(1), "password": TOKEN})
            page = web.get("/topics/guarded")
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


# A "?" in the token: a lossy decoding turns every invalid byte into one.
RULE_TOKEN = b"tok?en"
AUTHORIZATION_CASES = {
    "canonical": (b"Bearer tok?en", 201),
    "scheme in lower case": (b"bearer tok?en", 201),
    "scheme in upper case": (b"BEARER tok?en", 201),
    "two spaces before the token": (b"Bearer  tok?en", 201),
    "trailing space": (b"Bearer tok?en ", 201),
    "trailing tab": (b"Bearer tok?en\t", 201),
    "leading blanks": (b"  Bearer tok?en", 201),
    "invalid UTF-8 where the token has ?": (b"Bearer tok\xffen", 401),
    "valid UTF-8 where the token has ?": ("Bearer tok\u00e9en".encode(), 401),
    "an extra byte after the token": (b"Bearer tok?en\xff", 401),
    "tab instead of a space": (b"Bearer\ttok?en", 401),
    "no space": (b"Bearertok?en", 401),
    "another scheme": (b"Basic tok?en", 401),
    "no scheme": (b"tok?en", 401),
    "scheme only": (b"Bearer", 401),
    "a byte short": (b"Bearer tok?e", 401),
    "a second word": (b"Bearer tok?en x", 401),
    "percent-encoded": (b"Bearer tok%3Fen", 401),
}


def test_bearer_credentials_follow_rfc_7235() -> None:
    assert bearer_credentials(b"Bearer t") == b"t"
    assert bearer_credentials(b"bEaReR   t \t") == b"t"
    assert bearer_credentials(b"Bearer t\xff") == b"t\xff"
    assert bearer_credentials(b"Bearer ") is None
    assert bearer_credentials(b"") is None
    assert bearer_credentials(b"Basic t") is None


@pytest.fixture(scope="module")
def rule_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("auth-rule") / "data"
    data.mkdir()
    with BrokerProcess(data, ["--token", RULE_TOKEN.decode()]) as broker:
        yield broker


@pytest.fixture
def opened() -> Iterator[list[Connection]]:
    connections: list[Connection] = []
    yield connections
    for connection in connections:
        connection.close()


@pytest.mark.parametrize(
    ("value", "status"), AUTHORIZATION_CASES.values(), ids=AUTHORIZATION_CASES.keys()
)
def test_one_authorization_rule_on_both_paths(
    rule_broker: BrokerProcess, opened: list[Connection], value: bytes, status: int
) -> None:
    connect = connector(rule_broker.port, opened)
    body = orjson.dumps({"topic": "auth-rule", "message": 1})
    head = ("Host: x", "Content-Type: application/json", "Content-Length: {length}")
    request = exact(body, *head).replace(
        b"\r\n\r\n", b"\r\nAuthorization: " + value + b"\r\n\r\n", 1
    )
    by_lane = through_lane(connect, request)
    by_aiohttp = through_aiohttp(connect, request)
    assert (by_lane.status, by_aiohttp.status) == (status, status), by_lane.body
    assert comparable(by_lane) == comparable(by_aiohttp)
    # A route only aiohttp serves judges the header alike.
    listing = exact(b"", "Host: x", "Authorization: ").replace(b"POST /produce", b"GET /v1/topics")
    listing = listing.replace(b"Authorization: \r\n", b"Authorization: " + value + b"\r\n")
    assert through_aiohttp(connect, listing).status == (200 if status == 201 else 401)
