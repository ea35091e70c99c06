"""Error paths: broker down, unknown routes, bad input, missing CSRF, unexpected bugs.

No broker is running here (the UI points at a closed port), so these run fast.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.processes import free_port
from tests.ui.conftest import CSRF, ui_app

BROKER_PAGES = ["/", "/topics/temperature", "/groups", "/groups/g1", "/topics/t/messages/0/3"]
BROKER_APIS = ["/api/health", "/api/summary", "/api/topics/temperature/tail"]


@pytest.mark.parametrize("path", BROKER_PAGES)
def test_pages_show_the_broker_banner_when_the_broker_is_down(
    down_web: FlaskClient, path: str
) -> None:
    response = down_web.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "The broker is not answering" in html
    assert 'data-reload-when-up="true"' in html
    banner = html.split('id="broker-banner"', 1)[1].split(">", 1)[0]
    assert "d-none" not in banner
    assert "Traceback" not in html


@pytest.mark.parametrize("path", BROKER_APIS)
def test_api_answers_503_with_a_stable_code_when_the_broker_is_down(
    down_web: FlaskClient, path: str
) -> None:
    response = down_web.get(path)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "BROKER_UNAVAILABLE"


def test_produce_form_still_renders_and_reports_the_outage(down_web: FlaskClient) -> None:
    assert down_web.get("/produce").status_code == 200
    response = down_web.post(
        "/produce", data={"csrf_token": CSRF, "topic": "t", "value": '{"a": 1}', "format": "json"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "unavailable" in html
    assert "{&#34;a&#34;: 1}" in html  # what the user typed is kept, escaped


def test_unknown_page_is_a_friendly_404(down_web: FlaskClient) -> None:
    response = down_web.get("/no/such/page")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)
    api = down_web.get("/api/no-such-endpoint")
    assert api.status_code == 404
    assert api.get_json()["error"]["code"] == "NOT_FOUND"


def test_wrong_method_is_a_405(down_web: FlaskClient) -> None:
    response = down_web.post("/api/health", data={"csrf_token": CSRF})
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    "path",
    [
        "/api/topics/t/tail?cursor=nonsense",
        "/topics/t?partition=-1",
        "/topics/t?size=100000",
        "/topics/t?offset=abc",
        "/topics/t/export.csv?partition=x",
        "/produce?topic=t&offset=-4",
    ],
)
def test_bad_parameters_are_400_before_any_broker_call(down_web: FlaskClient, path: str) -> None:
    response = down_web.get(path)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "INVALID_REQUEST" in body
    assert "Traceback" not in body


def test_unknown_export_format_is_404(down_web: FlaskClient) -> None:
    assert down_web.get("/topics/t/export.xml").status_code == 404


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/produce", {"topic": "t", "value": "1"}),
        ("/topics/t/consume", {"group": "g", "count": "1"}),
        ("/groups/g/reset", {"topic": "t", "to": "earliest", "confirmed": "yes"}),
        ("/groups/g/delete", {"confirmed": "yes"}),
    ],
)
def test_posts_without_the_csrf_token_are_refused(
    down_web: FlaskClient, path: str, data: dict[str, str]
) -> None:
    assert down_web.post(path, data=data).status_code == 400
    forged = down_web.post(path, data={**data, "csrf_token": "guessed"})
    assert forged.status_code == 400
    assert "did not come from this page" in forged.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/topics/t/consume", {"count": "1"}, "group is required"),
        ("/topics/t/consume", {"group": "g", "count": "0"}, "count must be between"),
        ("/groups/g/reset", {"topic": "t", "to": "sideways"}, "to must be one of"),
        ("/groups/g/reset", {"topic": "t", "to": "offset"}, "needs the offset"),
        ("/groups/g/reset", {"topic": "t", "to": "timestamp"}, "needs the time"),
        ("/groups/g/reset", {"topic": "t", "to": "timestamp", "time": "soon"}, "ISO 8601"),
    ],
)
def test_bad_form_input_is_a_400_page(
    down_web: FlaskClient, path: str, data: dict[str, str], message: str
) -> None:
    response = down_web.post(path, data={**data, "csrf_token": CSRF})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_an_unexpected_bug_is_a_500_page_without_a_traceback() -> None:
    with ui_app(f"http://127.0.0.1:{free_port()}") as app:
        check_unexpected_errors_are_hidden(app)


def check_unexpected_errors_are_hidden(app: Flask) -> None:
    @app.get("/api/boom")
    def boom_api() -> str:
        raise RuntimeError("secret internals")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    client = app.test_client()
    page = client.get("/boom")
    assert page.status_code == 500
    assert "Something went wrong" in page.get_data(as_text=True)
    assert "secret internals" not in page.get_data(as_text=True)
    api = client.get("/api/boom")
    assert api.status_code == 500
    assert api.get_json()["error"]["code"] == "INTERNAL_ERROR"
    assert "secret internals" not in api.get_data(as_text=True)


def test_security_headers_are_set(down_web: FlaskClient) -> None:
    response = down_web.get("/produce")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_every_asset_a_page_loads_is_served_by_the_ui(down_web: FlaskClient) -> None:
    html = down_web.get("/produce").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/[^"]*\.(?:js|css))"', html)
    assert any("bootstrap" in path and path.endswith(".css") for path in assets)
    assert any("bootstrap" in path and path.endswith(".js") for path in assets)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "no asset from another host"
    for path in [
        *assets,
        "/static/vendor/chartjs/chart.umd.min.js",
        "/static/vendor/chartjs/LICENSE.md",
    ]:
        with down_web.get(path) as response:
            assert response.status_code == 200, path
