"""The host-metric producer end to end: real psutil readings, ``GET /nodes``, the nodes page.

A real broker and a real ``minimq producer --source host`` process; the
readings are this machine's. The nodes page is rendered by the UI on
waitress and checked in headless Chromium (Debian's, through Playwright).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from minimq.client import Client
from tests.support.processes import START_TIMEOUT, BrokerProcess
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing_reason, running, ui_server

METRICS = ("cpu", "mem", "disk", "net")
READING_TEXT = re.compile(r"^[0-9.]+ (%|B/s)$")


class HostProducer:
    def __init__(self, broker: BrokerProcess, node: str, process: subprocess.Popen[bytes]) -> None:
        self.broker = broker
        self.node = node
        self.process = process


@pytest.fixture(scope="module")
def host_producer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProducer]:
    root = tmp_path_factory.mktemp("host")
    (root / "data").mkdir()
    node = f"node-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "minimq", "producer", "--source", "host"]
    # Configured the original's way: environment variables only.
    with BrokerProcess(root / "data") as broker:
        env = {"BROKER_URL": broker.url, "NODE_NAME": node, "INTERVAL_SECONDS": "0.2"}
        with running(command, root / "host-producer.log", env) as process:
            yield HostProducer(broker, node, process)


def newest(client: Client, topic: str) -> Any:
    """The newest value of ``topic``, polled until one arrives (a slow machine may take long)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if topic in {t.name for t in client.list_topics()}:
            end = client.describe_topic(topic).partition_info[0].end_offset
            if end:
                return client.fetch(topic, offset=end - 1, limit=1).records[0].value
        time.sleep(0.1)
    raise AssertionError(f"no reading on {topic} within {START_TIMEOUT:.0f}s")


def test_a_real_psutil_reading_of_each_metric_arrives_as_json(host_producer: HostProducer) -> None:
    with Client(host_producer.broker.url) as client:
        readings = {metric: newest(client, f"{host_producer.node}-{metric}") for metric in METRICS}
    for metric, reading in readings.items():
        assert reading["node"] == host_producer.node
        assert reading["metric"] == metric
        assert reading["sensor_id"] == f"{host_producer.node}-{metric}"
        assert isinstance(reading["value"], int | float) and reading["value"] >= 0
        assert reading["seq"] >= 1 and reading["timestamp"].endswith("Z")
    for metric in ("cpu", "mem", "disk"):
        assert readings[metric]["unit"] == "%" and readings[metric]["value"] <= 100
    assert readings["net"]["unit"] == "B/s"
    assert readings["net"]["value"] == pytest.approx(
        readings["net"]["sent_per_s"] + readings["net"]["received_per_s"], abs=0.2
    )
    # The disk share is this machine's own: it moves far slower than the test runs.
    assert readings["disk"]["value"] == pytest.approx(psutil.disk_usage("/").percent, abs=5)


def test_nodes_lists_the_registered_node_as_the_original_did(host_producer: HostProducer) -> None:
    with Client(host_producer.broker.url) as client:
        newest(client, f"{host_producer.node}-cpu")
    # The original's producers registered with POST /produce; so can anyone.
    original = httpx.post(
        f"{host_producer.broker.url}/produce", json={"topic": "nodes", "message": "legacy-node"}
    )
    assert original.status_code == 201
    answer = httpx.get(f"{host_producer.broker.url}/nodes")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == [host_producer.node, "legacy-node"]


def test_the_host_producer_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with BrokerProcess(tmp_path / "data") as broker:
        env = {"BROKER_URL": broker.url, "NODE_NAME": "stopping", "INTERVAL_SECONDS": "0.2"}
        command = [sys.executable, "-m", "minimq", "producer", "--source", "host"]
        with running(command, tmp_path / "p.log", env) as process:
            with Client(broker.url) as client:
                newest(client, "stopping-mem")
            process.terminate()
            assert process.wait(30) == 0
        assert "stopped:" in (tmp_path / "p.log").read_text()


def test_a_node_name_that_cannot_name_a_topic_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "minimq", "producer", "--source", "host"],
        env={"NODE_NAME": "a node/with spaces", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--node-name" in result.stderr


_missing = chromium_missing_reason()
try:
    from playwright.sync_api import expect, sync_playwright

    _no_playwright = None
except ImportError as exc:  # the dev extra brings it; say so rather than fail to collect
    _no_playwright = str(exc)


@pytest.mark.browser
def test_the_nodes_page_shows_a_card_per_node_in_chromium(
    host_producer: HostProducer, tmp_path: Path
) -> None:
    if _missing is not None:
        pytest.skip(f"NOT RUN: {_missing}")
    if _no_playwright is not None:
        pytest.skip(f"NOT RUN: playwright is not installed ({_no_playwright})")
    with Client(host_producer.broker.url) as client:
        for metric in METRICS:
            newest(client, f"{host_producer.node}-{metric}")
    with ui_server(host_producer.broker.url, tmp_path) as ui_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(ui_url + "/")
            page.get_by_role("navigation").get_by_role("link", name="Nodes", exact=True).click()
            card = page.locator(f'[data-testid="node-card"][data-node="{host_producer.node}"]')
            expect(card).to_be_visible(timeout=START_TIMEOUT * 1000)
            for metric in METRICS:
                expect(card.get_by_test_id(f"metric-{metric}")).to_have_text(READING_TEXT)
            # The page refreshes itself: newer readings replace the card's time.
            shown = card.locator(".node-updated").text_content() or ""
            expect(card.locator(".node-updated")).not_to_have_text(
                shown, timeout=START_TIMEOUT * 1000
            )
        finally:
            browser.close()
