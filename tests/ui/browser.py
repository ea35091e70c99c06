"""Support for the end-to-end browser tests: the UI process, producers and Chromium.

The browser is Debian's ``chromium`` driven by Playwright (never a downloaded
browser).  Without Chromium, Playwright or (for the accessibility checks) npm,
the browser tests fail with a reason starting "NOT RUN:": they never pass
silently.  ``.ci/run`` installs all three.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.processes import free_port, wait_for_http

CHROMIUM = os.environ.get("MINIMQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


if TYPE_CHECKING:
    from playwright.sync_api import Browser

AXE_PACKAGE = "axe-core@4"


def chromium_missing_reason() -> str | None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return None
    return f"no chromium browser at {CHROMIUM} (install Debian's chromium or set MINIMQ_CHROMIUM)"


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium under Playwright; fails "NOT RUN: ..." when either is missing."""
    missing = chromium_missing_reason()
    if missing:
        pytest.fail(f"NOT RUN: {missing}")
    try:
        # Imported here so that a missing package fails the tests with a reason.
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        pytest.fail("NOT RUN: the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def axe_script(work_dir: Path) -> str:
    """The source of axe-core, from ``MINIMQ_AXE_JS`` or packed from the npm registry."""
    given = os.environ.get("MINIMQ_AXE_JS")
    if given:
        return Path(given).read_text()
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"NOT RUN: npm is needed to fetch {AXE_PACKAGE} (install Debian's npm)")
    packed = subprocess.run(
        [npm, "pack", AXE_PACKAGE, "--silent", "--pack-destination", str(work_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if packed.returncode != 0:
        pytest.fail(f"NOT RUN: npm pack {AXE_PACKAGE} failed: {packed.stderr.strip()[-500:]}")
    tarball = work_dir / packed.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/axe.min.js")
        assert member is not None, f"{tarball} holds no package/axe.min.js"
        return member.read().decode()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(
    command: list[str], log_path: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (stdout and stderr to ``log_path``) and stop it by its PID afterwards."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        yield process
    finally:
        _stop(process)


@contextlib.contextmanager
def ui_server(broker_url: str, log_dir: Path, token: str | None = None) -> Iterator[str]:
    """``minimq ui`` (waitress, the production server) on a free port; yields its URL.

    With ``token`` (passed in the environment, as ``minimq up`` does) the UI
    uses it for the broker and asks for it as its login.
    """
    env = {"MINIMQ_TOKEN": token} if token else {}
    # The free port can be taken by another process before the UI binds it: try a few.
    for attempt in range(3):
        port = free_port()
        command = [sys.executable, "-m", "minimq", "ui", "--broker-url", broker_url]
        with running([*command, "--port", str(port)], log_dir / "ui.log", env) as process:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_for_http(f"{url}/static/css/ui.css", 60.0, process)
            except RuntimeError:
                if attempt == 2 or "Address already in use" not in (log_dir / "ui.log").read_text():
                    raise
                continue
            yield url
            return


@contextlib.contextmanager
def producers(
    broker_url: str, log_dir: Path, interval: float, token: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The simulated sensor producers, configured the original way (environment variables)."""
    env = {
        "BROKER_URL": broker_url,
        "TOPICS": "temperature,humidity,pressure",
        "INTERVAL_SECONDS": str(interval),
        **({"MINIMQ_TOKEN": token} if token else {}),
    }
    with running(
        [sys.executable, "-m", "minimq", "producer"], log_dir / "producer.log", env
    ) as process:
        yield process
