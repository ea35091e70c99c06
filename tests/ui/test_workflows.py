"""The workflows of the topic table, browse, search, groups, phone layout and accessibility,
in Debian's Chromium against a real broker and ``minimq ui`` (waitress) on free ports.

One module-scoped stack holds a 1,000,000-record topic, produced once through
the batch API, so searching it is tested at the size users hit.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from minimq.client import Client
from tests.support.processes import BrokerProcess
from tests.ui.browser import axe_script, chromium, ui_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

BIG_TOPIC = "big"
BIG_RECORDS = 1_000_000
BIG_PARTITIONS = 4
BATCH = 10_000
NEEDLE_INDEX = 654_321
PHONE = {"width": 390, "height": 844}


@dataclass
class Stack:
    broker: BrokerProcess
    ui_url: str
    client: Client
    needle: str
    group: str
    axe: str


def fill_big_topic(client: Client, needle: str) -> None:
    """1,000,000 small readings over 4 partitions; the one keyed ``needle`` sits deep inside."""
    client.create_topic(BIG_TOPIC, partitions=BIG_PARTITIONS)
    for start in range(0, BIG_RECORDS, BATCH):
        client.produce_batch(
            BIG_TOPIC,
            [
                {
                    "key": needle if i == NEEDLE_INDEX else f"dev-{i % 500}",
                    "value": {"sensor_id": f"s-{i % 50}", "value": i},
                    "partition": i % BIG_PARTITIONS,
                }
                for i in range(start, start + BATCH)
            ],
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("workflows")
    (root / "data").mkdir()
    axe = axe_script(root)
    with (
        BrokerProcess(root / "data") as broker,
        ui_server(broker.url, root) as ui_url,
        Client(broker.url, timeout=60, retries=5) as client,
    ):
        needle = f"needle-{uuid.uuid4().hex[:8]}"
        fill_big_topic(client, needle)
        base = int(time.time() * 1000) - 600_000
        client.create_topic("keyed", partitions=12)
        client.produce_batch(
            "keyed",
            [
                {
                    "key": f"k{i}",
                    "value": {"sensor_id": f"t-{i % 3}", "value": i},
                    "timestamp": base + i * 1000,
                    "partition": i % 12,
                }
                for i in range(240)
            ],
        )
        for name in ("alpha", "bravo-busy", "charlie"):
            client.create_topic(name)
        client.produce_batch("bravo-busy", [{"value": i} for i in range(30)])
        group = f"readers-{uuid.uuid4().hex[:6]}"
        client.commit(group, [("keyed", 0, 20)])
        yield Stack(broker, ui_url, client, needle, group, axe)


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


def table_names(page: Page) -> list[str]:
    names: list[str] = page.locator("#topic-table tbody tr").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.topic)"
    )
    return names


def test_topic_table_sorts_and_filters(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url + "/")
    expect(page.locator('#topic-table tr[data-topic="big"] .topic-messages')).to_have_text(
        "1,000,000"
    )
    expect(page.get_by_role("button", name="Chart of alpha")).to_be_visible()
    assert table_names(page) == sorted(table_names(page))
    page.get_by_test_id("sort-messages").click()  # largest first
    expect(page.locator("#topic-table th[data-sort=messages]")).to_have_attribute(
        "aria-sort", "descending"
    )
    assert table_names(page)[:3] == ["big", "keyed", "bravo-busy"]
    page.get_by_test_id("sort-messages").click()
    assert table_names(page)[-1] == "big"
    page.get_by_test_id("topic-filter").fill("rav")
    expect(page.locator("#topic-table tbody tr")).to_have_count(1)
    assert table_names(page) == ["bravo-busy"]
    expect(page.get_by_test_id("table-status")).to_contain_text("1 of 5 topics match")


def test_create_and_delete_a_topic(stack: Stack, page: Page) -> None:
    name = f"made-{uuid.uuid4().hex[:6]}"
    page.goto(stack.ui_url + "/")
    page.get_by_test_id("new-topic").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Partitions").fill("3")
    page.get_by_label("Retention (hours)").fill("48")
    page.get_by_test_id("create-topic").click()
    expect(page.get_by_test_id("topic-title")).to_have_text(name)
    expect(page.get_by_test_id("topic-retention")).to_contain_text("48.0 h")
    info = stack.client.describe_topic(name)
    assert (info.partitions, info.config["retention_ms"]) == (3, 48 * 3_600_000)
    page.get_by_test_id("delete-topic").click()
    page.get_by_test_id("confirm").click()  # without the name typed: refused, nothing deleted
    expect(page.locator("#confirm-name-error")).to_be_visible()
    assert name in {t.name for t in stack.client.list_topics()}
    page.get_by_label("Type the topic's name to confirm").fill(name)
    page.get_by_test_id("confirm").click()
    expect(page.get_by_role("status").filter(has_text=f"Topic {name} deleted.")).to_be_visible()
    assert name not in {t.name for t in stack.client.list_topics()}


def test_forward_browse_from_a_time_across_partitions(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url + "/topics/keyed")
    records = [r for p in range(12) for r in stack.client.fetch("keyed", p, limit=100).records]
    records.sort(key=lambda r: r.timestamp)
    start = records[100].timestamp
    page.get_by_test_id("browse-time").fill(str(start))
    page.locator("#browse-size").select_option("50")
    page.get_by_test_id("browse-submit").click()
    rows = page.locator('[data-testid="browse-table"] tbody tr')
    expect(rows).to_have_count(50)
    shown = rows.evaluate_all(
        "(rows) => rows.map((r) => [Number(r.dataset.partition), Number(r.dataset.timestamp)])"
    )
    assert all(stamp >= start for _, stamp in shown), "a record before the time was shown"
    assert [stamp for _, stamp in shown] == [r.timestamp for r in records[100:150]]
    assert len({partition for partition, _ in shown}) == 12, "not merged across partitions"
    expect(page.get_by_test_id("browse-time")).to_have_value(str(start))  # the input is kept
    page.get_by_test_id("next-page").click()
    first_next = rows.first.get_attribute("data-timestamp")
    assert first_next == str(records[150].timestamp)


def test_search_finds_a_known_record_in_a_million(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url + "/topics/big")
    page.get_by_test_id("search-key").fill(stack.needle)
    page.get_by_test_id("search-run").click()
    status = page.get_by_test_id("search-status")
    expect(status).to_contain_text("done", timeout=120_000)
    expect(status).to_contain_text("1 found · scanned 1,000,000 of 1,000,000")
    row = page.locator('[data-testid="search-results"] tbody tr')
    expect(row).to_have_count(1)
    expect(row).to_contain_text(stack.needle)
    expect(row).to_contain_text(f'"value":{NEEDLE_INDEX}')
    assert row.get_attribute("data-partition") == str(NEEDLE_INDEX % BIG_PARTITIONS)


def test_reset_shows_a_preview_before_it_is_done(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.ui_url}/groups/{stack.group}")
    expect(page.get_by_test_id("total-lag")).to_have_text("220")  # 240 - 20 committed
    page.locator("#reset-to").select_option("offset")
    page.locator("#reset-offset").fill("5")
    page.locator("#reset-partition").fill("0")
    page.get_by_test_id("reset-submit").click()
    preview = page.get_by_test_id("reset-preview")
    expect(preview.locator('tr[data-partition="0"] .new-offset')).to_have_text("5")
    expect(preview).to_contain_text("re-reads 15")
    assert stack.client.describe_group(stack.group).offsets[0].committed_offset == 20
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("total-lag")).to_have_text("235")
    assert stack.client.describe_group(stack.group).offsets[0].committed_offset == 5
    page.locator("#reset-to").select_option("offset")
    page.locator("#reset-offset").fill("nope")
    page.get_by_test_id("reset-submit").click()
    expect(page.locator("#offset-error")).to_be_visible()
    expect(page.locator("#reset-offset")).to_have_value("nope")


def every_page(stack: Stack) -> list[str]:
    return [
        "/",
        "/topics/keyed",
        "/topics/keyed/messages/0/0",
        "/groups",
        f"/groups/{stack.group}",
        "/produce",
        "/new-topic",
        "/topics/keyed/retention",
    ]


def test_a_phone_never_scrolls_sideways(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        tab = context.new_page()
        for path in every_page(stack):
            tab.goto(stack.ui_url + path)
            tab.wait_for_load_state("networkidle")
            widths = tab.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], f"{path} scrolls sideways at 390 px: {widths}"
        tab.goto(stack.ui_url + "/")
        nav = tab.get_by_role("link", name="Groups")
        expect(nav).to_be_hidden()  # the navbar collapses
        tab.get_by_role("button", name="Toggle navigation").click()
        expect(nav).to_be_visible()
    finally:
        context.close()


def test_the_topic_picker_works_from_the_keyboard_alone(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url + "/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    picker = page.get_by_test_id("topic-picker")
    picker.focus()
    for key in ("ArrowDown", "ArrowDown", "ArrowUp"):
        page.keyboard.press(key)
    assert page.url == stack.ui_url + "/", "arrow keys navigated away"
    page.keyboard.type("charlie")
    page.keyboard.press("Enter")
    page.wait_for_url("**/topics/charlie")
    expect(page.get_by_test_id("topic-title")).to_have_text("charlie")
    current = page.get_by_role("link", name="Topics")
    expect(current).to_have_attribute("aria-current", "page")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_any_page(
    stack: Stack, browser: Browser, scheme: str, tmp_path: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 1400, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
        bypass_csp=True,  # axe-core is injected as an inline script
    )
    try:
        tab = context.new_page()
        found: dict[str, list[str]] = {}
        for path in every_page(stack):
            tab.goto(stack.ui_url + path)
            tab.wait_for_load_state("networkidle")
            tab.add_script_tag(content=stack.axe)
            result = tab.evaluate("async () => JSON.stringify(await axe.run(document))")
            violations = [
                f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}"
                for v in json.loads(result)["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            if violations:
                found[path] = violations
        assert found == {}, f"axe-core found serious or critical violations ({scheme}): {found}"
    finally:
        context.close()
