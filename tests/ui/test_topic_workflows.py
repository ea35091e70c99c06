"""Topic workflows in Debian's Chromium against a real broker and ``minimq ui``:
editing retention, values that are not JSON (produced over the Kafka listener),
and the chart plotted by a time field of the payload.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from minimq.client import Client
from tests.support.processes import BrokerProcess
from tests.ui.browser import chromium, ui_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TEXT_VALUE = "<b>plain</b> text & no JSON"
BINARY_VALUE = b"\x00\xff\xfe<script>alert(1)</script>\x80"
TIMEOUT_S = 60


@dataclass
class Stack:
    broker: BrokerProcess
    ui_url: str
    client: Client


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("topic-workflows")
    (root / "data").mkdir()
    with (
        BrokerProcess(root / "data", kafka=True) as broker,
        ui_server(broker.url, root) as ui_url,
        Client(broker.url, timeout=60, retries=5) as client,
    ):
        yield Stack(broker, ui_url, client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    yield tab
    context.close()


def test_editing_retention_confirms_the_new_values(stack: Stack, page: Page) -> None:
    name = f"kept-{uuid.uuid4().hex[:6]}"
    stack.client.create_topic(name, retention_ms=48 * 3_600_000)
    page.goto(f"{stack.ui_url}/topics/{name}")
    page.get_by_test_id("edit-retention").click()
    expect(page.get_by_label("Retention (hours)")).to_have_value("48")
    page.get_by_label("Retention (hours)").fill("soon")  # refused inline, the input kept
    page.get_by_test_id("retention-review").click()
    expect(page.locator("#retention_hours-error")).to_contain_text("must be a number")
    expect(page.get_by_label("Retention (hours)")).to_have_value("soon")
    page.get_by_label("Retention (hours)").fill("1.5")
    page.get_by_label("Size limit per partition (MiB)").fill("64")
    page.get_by_test_id("retention-review").click()
    expect(page.get_by_test_id("new-retention")).to_contain_text("1.5 h (5,400,000 ms)")
    expect(page.get_by_test_id("new-retention")).to_contain_text("64.0 MiB")
    assert stack.client.describe_topic(name).config["retention_ms"] == 48 * 3_600_000  # not yet
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("topic-retention")).to_contain_text("1.5 h")
    config = stack.client.describe_topic(name).config
    assert (config["retention_ms"], config["retention_bytes"]) == (5_400_000, 64 << 20)


def produce_over_kafka(stack: Stack, topic: str) -> None:
    try:
        import kafka  # noqa: PLC0415
    except ImportError:
        pytest.fail("NOT RUN: kafka-python is not installed (pip install -e '.[test]')")
    producer = kafka.KafkaProducer(bootstrap_servers=stack.broker.kafka_bootstrap)
    try:
        producer.send(topic, TEXT_VALUE.encode(), key=b"text-key").get(TIMEOUT_S)
        producer.send(topic, BINARY_VALUE, key=b"\xffbin", headers=[("h", b"\xfe")]).get(TIMEOUT_S)
        producer.flush(TIMEOUT_S)
    finally:
        producer.close(TIMEOUT_S)


def no_markup_from_values(page: Page) -> None:
    """Nothing of the values became markup: no <b>, no inline <script>, escaped text only."""
    injected = page.evaluate(
        "() => document.querySelectorAll('main b, main script:not([src])').length"
    )
    assert injected == 0, "a record's bytes became markup"


def test_values_that_are_not_json_show_as_text_or_hex(stack: Stack, page: Page) -> None:
    topic = f"raw-{uuid.uuid4().hex[:6]}"
    stack.client.create_topic(topic)
    produce_over_kafka(stack, topic)
    binary_hex = BINARY_VALUE.hex(" ")
    page.goto(f"{stack.ui_url}/topics/{topic}")
    tail = page.get_by_test_id("live-tail")
    expect(tail.locator("tbody tr")).to_have_count(2, timeout=TIMEOUT_S * 1000)
    expect(tail.locator('tr[data-offset="0"]')).to_contain_text("text, not JSON" + TEXT_VALUE)
    expect(tail.locator('tr[data-offset="1"]')).to_contain_text(
        f"binary, {len(BINARY_VALUE)} bytes, hex{binary_hex}"
    )
    browse = page.get_by_test_id("browse-table")
    expect(browse.locator('tr[data-offset="0"] .value-cell')).to_have_text(
        "text, not JSON " + TEXT_VALUE
    )
    expect(browse.locator('tr[data-offset="1"] .key-cell')).to_contain_text("ff 62 69 6e")
    no_markup_from_values(page)

    page.get_by_test_id("search-q").fill("no json")
    page.get_by_test_id("search-run").click()
    results = page.locator('[data-testid="search-results"] tbody tr')
    expect(results).to_have_count(1, timeout=TIMEOUT_S * 1000)
    expect(results).to_contain_text(TEXT_VALUE)
    no_markup_from_values(page)

    page.goto(f"{stack.ui_url}/topics/{topic}/messages/0/1")
    expect(page.get_by_test_id("message-value")).to_have_text(binary_hex)
    expect(page.get_by_test_id("message-detail")).to_contain_text(
        f"binary, {len(BINARY_VALUE)} bytes, hex"
    )
    no_markup_from_values(page)

    exported = page.request.get(f"{stack.ui_url}/topics/{topic}/export.ndjson").text()
    rows = [json.loads(line) for line in exported.splitlines()]
    assert [(r["value"], "value_b64" in r) for r in rows] == [(None, True), (None, True)]
    assert rows[1]["key_b64"] == "/2Jpbg==" and rows[1]["headers_b64"] == {"h": "/g=="}


def chart_xs(page: Page) -> list[float]:
    xs: list[float] = page.evaluate(
        """() => Chart.getChart(document.getElementById('value-chart'))
                 .data.datasets.flatMap((d) => d.data.map((p) => p.x))"""
    )
    return sorted(xs)


def test_the_chart_can_plot_by_a_time_field_of_the_payload(stack: Stack, page: Page) -> None:
    topic = f"buffered-{uuid.uuid4().hex[:6]}"
    measured = int(time.time() * 1000) - 3_600_000
    # Buffered during an outage, sent in one batch: one record time, readings an hour apart.
    readings = [
        {"sensor_id": "t-1", "value": 20 + i, "ts": measured + i * 600_000} for i in range(3)
    ] + [{"sensor_id": "t-1", "value": 30, "ts": "2026-01-02T03:04:05Z"}]
    stack.client.create_topic(topic)
    stack.client.produce_batch(topic, [{"value": v} for v in readings])
    page.goto(f"{stack.ui_url}/topics/{topic}")
    expect(page.get_by_test_id("chart-status")).to_contain_text(
        "4 points", timeout=TIMEOUT_S * 1000
    )
    by_record_time = chart_xs(page)
    assert by_record_time[-1] - by_record_time[0] < 1000, "one batch, one record time"
    page.get_by_test_id("chart-time").select_option("ts")
    iso_ms = 1_767_323_045_000  # 2026-01-02T03:04:05Z
    expected = sorted([measured, measured + 600_000, measured + 1_200_000, iso_ms])
    assert chart_xs(page) == expected
    assert "chart_time=ts" in page.url
    page.reload()  # remembered for the topic
    expect(page.get_by_test_id("chart-status")).to_contain_text(
        "4 points", timeout=TIMEOUT_S * 1000
    )
    expect(page.get_by_test_id("chart-time")).to_have_value("ts")
    assert chart_xs(page) == expected
    page.goto(f"{stack.ui_url}/topics/{topic}")  # no URL parameter: localStorage remembers
    expect(page.get_by_test_id("chart-status")).to_contain_text(
        "4 points", timeout=TIMEOUT_S * 1000
    )
    assert chart_xs(page) == expected


def test_a_field_some_records_lack_leaves_them_out_and_says_so(stack: Stack, page: Page) -> None:
    topic = f"partial-{uuid.uuid4().hex[:6]}"
    stack.client.create_topic(topic)
    stack.client.produce_batch(
        topic, [{"value": {"value": 1, "measured_at": 1_700_000_000}}, {"value": {"value": 2}}]
    )
    page.goto(f"{stack.ui_url}/topics/{topic}?chart_time=measured_at")
    expect(page.get_by_test_id("chart-status")).to_contain_text(
        '1 points (1 without "measured_at" not shown)', timeout=TIMEOUT_S * 1000
    )
    assert chart_xs(page) == [1_700_000_000_000]  # epoch seconds, detected
