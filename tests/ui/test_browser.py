"""End to end in headless Chromium: a real broker, real simulated producers, the UI on waitress.

The broker has a token, as an exposed one must, so the UI asks for a login:
every page is reached through it.

Run only these with ``pytest -m browser tests/ui``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from minimq.client import Client
from tests.support.processes import BrokerProcess
from tests.ui.browser import chromium, producers, ui_server

pytestmark = [pytest.mark.browser]

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
TOKEN = "browser-token"


class Stack:
    def __init__(self, broker: BrokerProcess, ui_url: str, client: Client) -> None:
        self.broker = broker
        self.ui_url = ui_url
        self.client = client


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("e2e")
    (root / "data").mkdir()
    with (
        BrokerProcess(root / "data", ["--token", TOKEN]) as broker,
        producers(broker.url, root, interval=0.2, token=TOKEN),
        ui_server(broker.url, root, token=TOKEN) as ui_url,
        Client(broker.url, token=TOKEN, retries=5) as client,
    ):
        deadline = time.monotonic() + 15
        while not {"temperature", "humidity", "pressure"} <= {t.name for t in client.list_topics()}:
            assert time.monotonic() < deadline, "the producers created no topics"
            time.sleep(0.2)
        yield Stack(broker, ui_url, client)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def log_in(page: Page, ui_url: str, password: str) -> None:
    page.goto(ui_url + "/login")
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A tab of a fresh browser context, logged in to the UI."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(tab, stack.ui_url, TOKEN)
    tab.wait_for_url(stack.ui_url + "/")
    yield tab
    context.close()
    assert dialogs == [], "a message ran script in the page"


def test_the_ui_asks_for_a_login_and_keeps_it_in_a_locked_down_cookie(
    stack: Stack, browser: Browser
) -> None:
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(stack.ui_url + "/topics/temperature")
        tab.wait_for_url("**/login?next=**")
        log_in(tab, stack.ui_url, "a guess")
        expect(tab.get_by_test_id("login-error")).to_contain_text("Wrong password")
        tab.goto(stack.ui_url + "/topics/temperature")
        tab.get_by_test_id("login-password").fill(TOKEN)
        tab.get_by_test_id("login-submit").click()
        tab.wait_for_url("**/topics/temperature")
        expect(tab.get_by_test_id("tail-status")).to_contain_text("live")
        (cookie,) = [c for c in context.cookies() if c["name"] == "minimq_ui_session"]
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Lax", False)
        assert tab.evaluate("() => document.cookie") == "", "scripts cannot read the session"
        tab.get_by_test_id("logout").click()
        tab.wait_for_url("**/login")
        tab.goto(stack.ui_url + "/")
        tab.wait_for_url("**/login?next=**")
    finally:
        context.close()


def test_dashboard_table_counts_live_and_charts_on_demand(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url + "/")
    messages = page.locator('#topic-table tr[data-topic="temperature"] .topic-messages')
    expect(messages).not_to_have_text("")
    before = messages.inner_text()
    expect(messages).not_to_have_text(before, timeout=5000)
    page.get_by_role("button", name="Chart of temperature").click()
    expect(page.locator("#chart-title")).to_have_text("Values of temperature")
    page.wait_for_function(
        "() => Chart.getChart(document.getElementById('topic-chart')).data.datasets"
        ".reduce((n, d) => n + d.data.length, 0) > 0",
        timeout=10_000,
    )
    page.get_by_test_id("topic-picker").fill("humidity")
    page.get_by_test_id("topic-picker").press("Enter")
    page.wait_for_url("**/topics/humidity")
    expect(page.get_by_test_id("topic-title")).to_have_text("humidity")


def test_topic_page_live_tail_and_chart(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url + "/topics/temperature")
    expect(page.get_by_test_id("tail-status")).to_contain_text("live")
    page.wait_for_function(
        "() => Chart.getChart(document.getElementById('value-chart')).data.datasets"
        ".reduce((n, d) => n + d.data.length, 0) >= 10",
        timeout=15_000,
    )
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    stack.client.produce("temperature", {"sensor_id": marker, "value": 22.5})
    expect(page.locator("#live-tail tbody")).to_contain_text(marker, timeout=2000)
    page.wait_for_function(
        "(m) => Chart.getChart(document.getElementById('value-chart')).data.datasets"
        ".some((d) => d.label.startsWith(m) && d.data.length > 0)",
        arg=marker,
        timeout=2000,
    )


def test_consume_next_advances_the_group_offset(stack: Stack, page: Page) -> None:
    group = f"e2e-{uuid.uuid4().hex[:8]}"
    page.goto(stack.ui_url + "/topics/pressure")
    page.fill("#consume-group", group)
    page.fill("#consume-count", "2")
    page.get_by_test_id("consume-next").click()
    expect(page.get_by_test_id("consume-summary")).to_contain_text("2 messages consumed")
    expect(page.locator(".committed-offset")).to_have_text("2")
    page.get_by_test_id("consume-next").click()
    expect(page.locator(".committed-offset")).to_have_text("4")
    assert [o.committed_offset for o in stack.client.describe_group(group).offsets] == [4]


def test_produce_form_and_resend(stack: Stack, page: Page) -> None:
    topic = f"e2e-{uuid.uuid4().hex[:8]}"
    page.goto(stack.ui_url + "/produce")
    page.fill("#produce-topic", topic)
    page.fill("#produce-key", "k1")
    page.fill("#produce-value", '{"sensor_id": "manual", "value": 7}')
    page.get_by_test_id("produce-submit").click()
    expect(page.get_by_test_id("produce-result")).to_contain_text(
        f"Sent to {topic} partition 0 at offset 0"
    )
    page.get_by_role("link", name="View it").click()
    expect(page.get_by_test_id("message-value")).to_contain_text('"value": 7')
    page.get_by_role("link", name="Re-send this message…").click()
    page.get_by_test_id("produce-submit").click()
    expect(page.get_by_test_id("produce-result")).to_contain_text("at offset 1")
    records = stack.client.fetch(topic, 0).records
    assert [(r.key, r.value) for r in records] == [("k1", {"sensor_id": "manual", "value": 7})] * 2


def test_a_hostile_message_renders_as_text(stack: Stack, page: Page) -> None:
    topic = f"e2e-{uuid.uuid4().hex[:8]}"
    stack.client.produce(topic, XSS, key=XSS)
    page.goto(f"{stack.ui_url}/topics/{topic}")
    expect(page.locator("#live-tail tbody")).to_contain_text(XSS)
    expect(page.get_by_test_id("browse-table")).to_contain_text(XSS)
    stack.client.produce(topic, {"note": XSS})
    expect(page.locator("#live-tail tbody")).to_contain_text('{"note":"<script>')
    page.goto(f"{stack.ui_url}/topics/{topic}/messages/0/0")
    expect(page.get_by_test_id("message-value")).to_have_text(XSS)
    page.goto(f"{stack.ui_url}/topics/{topic}")
    page.get_by_test_id("search-q").fill("<script>")
    page.get_by_test_id("search-run").click()
    expect(page.get_by_test_id("search-results")).to_contain_text(XSS)
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("() => document.querySelectorAll('script:not([src])').length") == 0


def test_broker_restart_shows_the_banner_then_recovers(
    stack: Stack, browser: Browser, page: Page
) -> None:
    page.goto(stack.ui_url + "/topics/temperature")
    expect(page.get_by_test_id("tail-status")).to_contain_text("live")
    banner = page.get_by_test_id("broker-banner")
    expect(banner).to_be_hidden()
    stack.broker.stop()
    try:
        expect(banner).to_be_visible(timeout=5000)
        expect(page.get_by_test_id("tail-status")).to_contain_text("paused")
        expect(banner).not_to_contain_text("HTTPConnectionPool")
        offline = page.context.new_page()  # logged in too: the same browser context
        offline.goto(stack.ui_url + "/")
        expect(offline.get_by_test_id("error-page")).to_contain_text("The broker is not answering")
        expect(offline.get_by_test_id("broker-banner")).to_be_visible()
    finally:
        stack.broker.start()
    expect(banner).to_be_hidden(timeout=10_000)
    marker = f"after-restart-{uuid.uuid4().hex[:8]}"
    stack.client.produce("temperature", {"sensor_id": marker, "value": 1.0})
    expect(page.locator("#live-tail tbody")).to_contain_text(marker, timeout=5000)
    expect(offline.locator('#topic-table tr[data-topic="temperature"]')).to_be_visible(
        timeout=10_000
    )
    offline.close()
