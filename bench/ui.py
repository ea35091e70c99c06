"""Web UI benchmark (not a test): page load and first-data times, search, and UI CPU.

Starts ``minimq broker`` and ``minimq ui`` (waitress) on 127.0.0.1 with a
temporary data directory, fills them like a busy deployment (56 topics: a
1,000,000-record topic produced through the batch API, a 12-partition keyed
topic, 54 small ones, of which ``--live`` receive a record a second, and a
consumer group), then measures in Debian's Chromium through Playwright:

1. every page: *load* (navigation start to the load event) and *first data*
   (navigation start until the page shows broker data: the topic table's
   status line, the live tail saying "live", the group's live lag);
2. a search for one key in the 1,000,000-record topic, from the click to
   "done" (every record scanned);
3. the UI process's CPU (user + system time over wall time) with 5 dashboards
   open for ``--seconds``.

Targets (issue 15): first data under 500 ms on every page, the search under
5 s, the UI under 5 % CPU with 5 dashboards.  The machine is shared, so
numbers are noisy: compare runs taken back to back.

With ``--screenshots DIR`` it saves the documentation's screenshots instead
(desktop 1400 px and phone 390 px, light scheme), from the same data.

    python bench/ui.py [--seconds 30] [--live 10]
    python bench/ui.py --screenshots docs/img
"""

from __future__ import annotations

import sys
from pathlib import Path

# ``bench/http.py`` is named like the stdlib ``http`` package; drop this
# directory from the import path so ``import http.client`` still works.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import psutil  # noqa: E402
from playwright.sync_api import Browser, Page  # noqa: E402
from tests.support.processes import BrokerProcess  # noqa: E402
from tests.ui.browser import chromium, ui_server  # noqa: E402

from minimq.client import Client  # noqa: E402

BIG = "big"
BIG_RECORDS = 1_000_000
BATCH = 10_000
SMALL_TOPICS = 54
GROUP = "billing"
NEEDLE = "needle-key"


def fill(client: Client) -> None:
    client.create_topic(BIG, partitions=4)
    for start in range(0, BIG_RECORDS, BATCH):
        client.produce_batch(
            BIG,
            [
                {
                    "key": NEEDLE if i == 777_777 else f"dev-{i % 500}",
                    "value": {"sensor_id": f"s-{i % 50}", "value": i % 1000},
                    "partition": i % 4,
                }
                for i in range(start, start + BATCH)
            ],
        )
    client.create_topic("keyed", partitions=12)
    client.produce_batch(
        "keyed",
        [{"key": f"k{i}", "value": {"sensor_id": f"t-{i % 3}", "value": i}} for i in range(1200)],
    )
    for n in range(SMALL_TOPICS):
        name = f"sensors-{n:02d}"
        client.create_topic(name, partitions=1 + n % 3)
        client.produce_batch(
            name,
            [
                {"key": f"s{i % 4}", "value": {"sensor_id": f"{name}-{i % 4}", "value": i}}
                for i in range(100)
            ],
        )
    client.commit(GROUP, [("keyed", p, 50) for p in range(12)])


@contextmanager
def live_producer(client: Client, topics: int) -> Iterator[None]:
    """One record a second into each of the first ``topics`` small topics, until the block ends."""
    stop = threading.Event()

    def run() -> None:
        value = 0
        while not stop.wait(1.0):
            value += 1
            for n in range(topics):
                client.produce(f"sensors-{n:02d}", {"sensor_id": f"live-{n}", "value": value % 30})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


PAGES = [
    ("dashboard", "/", "() => document.getElementById('table-status').textContent !== ''"),
    (
        "topic (1,000,000 records)",
        f"/topics/{BIG}",
        "() => document.getElementById('tail-status').textContent.startsWith('live')",
    ),
    (
        "topic (12 partitions)",
        "/topics/keyed",
        "() => document.getElementById('tail-status').textContent.startsWith('live')",
    ),
    ("groups", "/groups", None),
    (
        "group",
        f"/groups/{GROUP}",
        "() => document.getElementById('group-status').textContent.includes('updated')",
    ),
    ("produce", "/produce", None),
]


def time_page(page: Page, url: str, ready: str | None) -> tuple[float, float]:
    page.goto(url, wait_until="load")
    load = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
    if ready is None:
        return load, load
    page.wait_for_function(ready, timeout=30_000)
    first = page.evaluate("() => performance.now()")
    return load, first


def measure_pages(browser: Browser, ui_url: str, runs: int) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    print(f"{'page':28} {'load ms':>9} {'first data ms':>14}   (median of {runs})")
    for name, path, ready in PAGES:
        samples = [time_page(page, ui_url + path, ready) for _ in range(runs)]
        load = statistics.median(s[0] for s in samples)
        first = statistics.median(s[1] for s in samples)
        print(f"{name:28} {load:9.0f} {first:14.0f}")
    context.close()


def measure_search(browser: Browser, ui_url: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{ui_url}/topics/{BIG}")
    page.fill("#search-key", NEEDLE)
    started = time.monotonic()
    page.click("#search-run")
    page.wait_for_function(
        "() => document.getElementById('search-status').textContent.includes('done')",
        timeout=300_000,
    )
    elapsed = time.monotonic() - started
    print(
        f"search by key over {BIG_RECORDS:,} records: {elapsed:.2f} s "
        f"({page.inner_text('#search-status')})"
    )
    context.close()


def measure_cpu(browser: Browser, ui_url: str, ui_pid: int, seconds: float) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tabs = [context.new_page() for _ in range(5)]
    for tab in tabs:
        tab.goto(ui_url + "/")
    time.sleep(3)  # every tab past its first poll
    process = psutil.Process(ui_pid)
    before = process.cpu_times()
    started = time.monotonic()
    time.sleep(seconds)
    after = process.cpu_times()
    wall = time.monotonic() - started
    used = (after.user - before.user) + (after.system - before.system)
    print(
        f"UI process CPU with 5 dashboards open: {100 * used / wall:.1f} % of one core"
        f" over {wall:.0f} s"
    )
    context.close()


def screenshots(browser: Browser, ui_url: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shots = [("dashboard", "/"), ("topic", "/topics/sensors-00"), ("group", f"/groups/{GROUP}")]
    for width, suffix in ((1400, ""), (390, "-phone")):
        context = browser.new_context(
            viewport={"width": width, "height": 900}, color_scheme="light"
        )
        page = context.new_page()
        for name, path in shots:
            page.goto(ui_url + path)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(2500)  # a few polls: live data in the charts
            page.screenshot(path=str(out / f"{name}{suffix}.png"), full_page=width > 400)
        context.close()
    print(f"screenshots written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="CPU measurement window")
    parser.add_argument("--live", type=int, default=10, help="small topics receiving 1 record/s")
    parser.add_argument("--runs", type=int, default=5, help="page loads per page (median)")
    parser.add_argument("--screenshots", type=Path, help="save the docs' screenshots here instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        with (
            BrokerProcess(root / "data", ["--fsync", "never"]) as broker,
            Client(broker.url, timeout=60) as client,
        ):
            started = time.monotonic()
            fill(client)
            print(
                f"filled 56 topics ({BIG_RECORDS:,} records in {BIG!r})"
                f" in {time.monotonic() - started:.0f} s"
            )
            with (
                ui_server(broker.url, root) as ui_url,
                live_producer(client, args.live),
                chromium() as browser,
            ):
                ui_pid = next(p.pid for p in psutil.Process().children() if "ui" in p.cmdline())
                if args.screenshots:
                    screenshots(browser, ui_url, args.screenshots)
                    return
                measure_pages(browser, ui_url, args.runs)
                measure_search(browser, ui_url)
                measure_cpu(browser, ui_url, ui_pid, args.seconds)


if __name__ == "__main__":
    main()
