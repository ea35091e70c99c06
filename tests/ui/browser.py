"""Support for the end-to-end browser tests: the UI process, producers and Chromium.

The browser is Debian's ``chromium`` driven by Playwright (never a downloaded
browser); without it the browser tests skip and say why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "img"


def chromium_missing_reason() -> str | None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return None
    return f"no chromium browser at {CHROMIUM} (install Debian's chromium or set MINIMQ_CHROMIUM)"


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
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "minimq",
        "ui",
        "--broker-url",
        broker_url,
        "--port",
        str(port),
    ]
    with running(command, log_dir / "ui.log", {"MINIMQ_TOKEN": token} if token else {}) as process:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/static/css/ui.css", 15.0, process)
        yield url


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


def save_screenshot(png: bytes, name: str) -> None:
    """Keep a screenshot for the docs when ``MINIMQ_UPDATE_SCREENSHOTS=1``."""
    if os.environ.get("MINIMQ_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        (SCREENSHOT_DIR / name).write_bytes(png)
