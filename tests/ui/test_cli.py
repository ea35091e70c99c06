"""``minimq ui``: options from flags and environment, and production serving by waitress."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from minimq.cli.main import build_parser
from tests.support.processes import free_port
from tests.ui.browser import ui_server

ENV_VARS = ("MINIMQ_BROKER_URL", "BROKER_URL", "MINIMQ_TOKEN", "MINIMQ_UI_HOST", "MINIMQ_UI_PORT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    args = build_parser().parse_args(["ui"])
    assert (args.broker_url, args.token, args.host, args.port, args.dev) == (
        "http://localhost:5000",
        None,
        "127.0.0.1",
        8080,
        False,
    )


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "http://original:5000")
    monkeypatch.setenv("MINIMQ_TOKEN", "s3cret")
    monkeypatch.setenv("MINIMQ_UI_HOST", "0.0.0.0")
    monkeypatch.setenv("MINIMQ_UI_PORT", "9090")
    args = build_parser().parse_args(["ui"])
    assert (args.broker_url, args.token, args.host, args.port) == (
        "http://original:5000",
        "s3cret",
        "0.0.0.0",
        9090,
    )
    monkeypatch.setenv("MINIMQ_BROKER_URL", "http://preferred:5000")
    assert build_parser().parse_args(["ui"]).broker_url == "http://preferred:5000"


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIMQ_BROKER_URL", "http://env:5000")
    monkeypatch.setenv("MINIMQ_UI_PORT", "9090")
    args = build_parser().parse_args(
        ["ui", "--broker-url", "http://flag:5000", "--port", "7070", "--token", "t", "--dev"]
    )
    assert (args.broker_url, args.port, args.token, args.dev) == (
        "http://flag:5000",
        7070,
        "t",
        True,
    )


def test_served_by_waitress_and_reports_a_missing_broker(tmp_path: Path) -> None:
    with ui_server(f"http://127.0.0.1:{free_port()}", tmp_path) as url:
        health = httpx.get(f"{url}/api/health")
        assert health.headers["Server"] == "waitress"
        assert health.status_code == 503
        assert health.json()["error"]["code"] == "BROKER_UNAVAILABLE"
        page = httpx.get(f"{url}/")
        assert page.status_code == 503
        assert "The broker is not answering" in page.text
