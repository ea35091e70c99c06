"""The UI's own login (Flask test client, a real broker behind it, and a real UI process).

With a token or a UI password, every page and JSON endpoint needs a login;
the session cookie is HttpOnly, SameSite=Lax and Secure over https; the
password is checked in constant time and failed logins are throttled.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from minimq.cli import ui_command
from minimq.cli.main import build_parser
from minimq.ui import create_app
from minimq.ui.broker import close_client
from minimq.ui.login import COOKIE_NAME
from minimq.ui.login_throttle import LoginThrottle
from tests.support.processes import BrokerProcess, free_port, wait_for_http

TOKEN = "ui-login-token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("ui-login") / "data"
    data.mkdir()
    with BrokerProcess(data, ["--token", TOKEN]) as broker:
        yield broker


@pytest.fixture
def app(guarded: BrokerProcess) -> Iterator[Flask]:
    ui = create_app(guarded.url, TOKEN, secret_key="login-test")
    try:
        yield ui
    finally:
        close_client(ui)


def csrf_from(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


def log_in(web: FlaskClient, password: str, next_url: str = "") -> object:
    form = web.get("/login").get_data(as_text=True)
    return web.post(
        "/login", data={"csrf_token": csrf_from(form), "password": password, "next": next_url}
    )


def session_cookie_header(response: object) -> str:
    headers = response.headers.getlist("Set-Cookie")  # type: ignore[attr-defined]
    (cookie,) = [h for h in headers if h.startswith(COOKIE_NAME + "=")]
    return str(cookie)


def test_without_a_secret_there_is_no_login(guarded: BrokerProcess) -> None:
    ui = create_app(guarded.url, secret_key="x")  # the broker refuses it, but no login
    try:
        web = ui.test_client()
        assert web.get("/login").status_code == 302
        # No login in the way: the broker itself refuses the UI, which has no token.
        assert web.get("/api/summary").status_code == 502
    finally:
        close_client(ui)


def test_every_page_and_endpoint_needs_the_login(app: Flask) -> None:
    web = app.test_client()
    page = web.get("/topics/anything?x=1")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=/topics/anything?x%3D1"
    api = web.get("/api/summary")
    assert api.status_code == 401
    assert api.get_json()["error"]["code"] == "UNAUTHORIZED"
    # A form post without a login does nothing and goes to the login page.
    produced = web.post("/produce", data={"topic": "t", "value": "1"})
    assert produced.status_code == 302
    assert produced.headers["Location"].startswith("/login")
    # What the login page itself loads is served without one.
    with web.get("/static/css/ui.css") as stylesheet:
        assert stylesheet.status_code == 200
    assert web.get("/login").status_code == 200


def test_the_token_logs_in_and_the_session_cookie_is_locked_down(app: Flask) -> None:
    web = app.test_client()
    wrong = log_in(web, "guess")
    assert wrong.status_code == 403  # type: ignore[attr-defined]
    assert "Wrong password" in wrong.get_data(as_text=True)  # type: ignore[attr-defined]
    assert web.get("/").status_code == 302
    right = log_in(web, TOKEN, "/groups")
    assert right.status_code == 302  # type: ignore[attr-defined]
    assert right.headers["Location"] == "/groups"  # type: ignore[attr-defined]
    cookie = session_cookie_header(right)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie, "plain http on localhost keeps working"
    assert web.get("/").status_code == 200
    assert web.get("/api/health").get_json()["broker"] == "up"


def test_the_cookie_is_secure_over_https_or_when_told(guarded: BrokerProcess) -> None:
    for secure_cookie, base_url in ((False, "https://ui.example"), (True, "http://ui.example")):
        ui = create_app(guarded.url, TOKEN, secret_key="s", secure_cookie=secure_cookie)
        try:
            web = ui.test_client()
            form = web.get("/login", base_url=base_url).get_data(as_text=True)
            answer = web.post(
                "/login",
                base_url=base_url,
                data={"csrf_token": csrf_from(form), "password": TOKEN},
            )
            assert "Secure" in session_cookie_header(answer)
        finally:
            close_client(ui)


def test_a_ui_password_replaces_the_token_as_the_login(guarded: BrokerProcess) -> None:
    ui = create_app(guarded.url, TOKEN, password="ui-only", secret_key="s")
    try:
        web = ui.test_client()
        assert log_in(web, TOKEN).status_code == 403  # type: ignore[attr-defined]
        assert log_in(web, "ui-only").status_code == 302  # type: ignore[attr-defined]
        # The broker still gets the token, not the UI password.
        assert web.get("/api/health").get_json()["broker"] == "up"
    finally:
        close_client(ui)


def test_login_needs_the_csrf_token_and_starts_a_new_session(app: Flask) -> None:
    web = app.test_client()
    assert web.post("/login", data={"password": TOKEN}).status_code == 400
    before = csrf_from(web.get("/login").get_data(as_text=True))
    log_in(web, TOKEN)
    after = csrf_from(web.get("/produce").get_data(as_text=True))
    assert after != before, "no session fixation: a login gets a fresh session"


def test_next_never_leaves_the_site(app: Flask) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = log_in(app.test_client(), TOKEN, target)
        assert answer.headers["Location"] == "/", target  # type: ignore[attr-defined]


def test_logout_ends_the_session(app: Flask) -> None:
    web = app.test_client()
    log_in(web, TOKEN)
    token = csrf_from(web.get("/").get_data(as_text=True))
    assert web.post("/logout", data={"csrf_token": token}).status_code == 302
    assert web.get("/").status_code == 302


def test_a_login_expires_after_the_session_lifetime(app: Flask) -> None:
    assert app.permanent_session_lifetime == timedelta(hours=12)
    web = app.test_client()
    log_in(web, TOKEN)
    assert web.get("/").status_code == 200
    # The cookie's signature is older than the lifetime (now: any age is too old).
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=-1)
    assert web.get("/").status_code == 302


def test_changing_the_password_ends_every_session(guarded: BrokerProcess) -> None:
    first = create_app(guarded.url, TOKEN, password="one", secret_key="shared")
    second = create_app(guarded.url, TOKEN, password="two", secret_key="shared")
    try:
        web = first.test_client()
        log_in(web, "one")
        cookie = web.get_cookie(COOKIE_NAME)
        assert cookie is not None
        assert web.get("/").status_code == 200
        other = second.test_client()
        other.set_cookie(COOKIE_NAME, cookie.value)
        assert other.get("/").status_code == 302, "a login for the old password is no login"
        assert "one" not in cookie.value, "the cookie never holds the password"
    finally:
        close_client(first)
        close_client(second)


def test_failed_logins_are_throttled_per_address(app: Flask) -> None:
    web = app.test_client()
    for _ in range(5):
        assert log_in(web, "guess").status_code == 403  # type: ignore[attr-defined]
    throttled = log_in(web, TOKEN)
    assert throttled.status_code == 429, "not even the right password is checked now"  # type: ignore[attr-defined]
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60  # type: ignore[attr-defined]
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert log_in(elsewhere, TOKEN).status_code == 302  # type: ignore[attr-defined]


def test_the_throttle_window_slides_and_a_success_clears_an_address() -> None:
    now = [0.0]
    throttle = LoginThrottle(per_address=2, overall=3, window_s=10, monotonic=lambda: now[0])
    throttle.failed("a")
    now[0] = 5
    throttle.failed("a")
    assert throttle.retry_after("a") == pytest.approx(5)
    assert throttle.retry_after("b") is None
    throttle.failed("b")
    assert throttle.retry_after("c") == pytest.approx(5), "three failures overall: everyone waits"
    now[0] = 10.5
    assert throttle.retry_after("a") is None
    assert throttle.retry_after("c") is None
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") is None


def test_listening_beyond_loopback_without_a_login_warns_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("MINIMQ_TOKEN", "MINIMQ_UI_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    served: list[str] = []
    monkeypatch.setattr(ui_command.waitress, "serve", lambda app, host, **_: served.append(host))
    for host, password, loud in (("0.0.0.0", None, True), ("0.0.0.0", "p", False),
                                 ("127.0.0.1", None, False), ("::1", None, False)):  # fmt: skip
        caplog.clear()
        argv = ["ui", "--host", host] + (["--password", password] if password else [])
        with caplog.at_level(logging.WARNING, logger="minimq.cli.ui_command"):
            args = build_parser().parse_args(argv)
            assert ui_command.run(args) == 0
        assert ("WITHOUT a login" in caplog.text) == loud, (host, password, caplog.text)
    assert served == ["0.0.0.0", "0.0.0.0", "127.0.0.1", "::1"]


def test_a_real_ui_process_asks_for_the_login(guarded: BrokerProcess, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "ui.log").open("wb")
    ui = subprocess.Popen(
        [sys.executable, "-m", "minimq", "ui", "--host", "127.0.0.1", "--port", str(port),
         "--broker-url", guarded.url],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MINIMQ_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/login", timeout=20, process=ui)
        with httpx.Client(base_url=url, timeout=10) as web:
            assert web.get("/").status_code == 302
            assert web.get("/api/summary").status_code == 401
            form = web.get("/login").text
            logged = web.post("/login", data={"csrf_token": csrf_from(form), "password": TOKEN})
            assert logged.status_code == 302, logged.text[:300]
            assert "HttpOnly" in logged.headers["set-cookie"]
            assert web.get("/").status_code == 200
            assert web.get("/api/health").json()["broker"] == "up"
    finally:
        ui.terminate()
        ui.wait(10)
        log.close()
