"""The UI given several broker URLs: pages are served by whichever answers, and say which."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker_pair import broker_pair
from tests.support.processes import BrokerProcess, free_port
from tests.ui.conftest import ui_app


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[BrokerProcess, BrokerProcess]]:
    with broker_pair(tmp_path) as brokers:
        yield brokers


def test_health_names_the_broker_that_answers_and_follows_a_failover(
    pair: tuple[BrokerProcess, BrokerProcess],
) -> None:
    a, b = pair
    with ui_app(f"{a.url},{b.url}") as app:
        web = app.test_client()
        assert web.get("/api/health").get_json() == {"broker": "up", "url": a.url}
        a.kill()
        # The same request is served by b, and the status names it from now on.
        assert web.get("/api/health").get_json() == {"broker": "up", "url": b.url}
        assert web.get("/groups").status_code == 200
        b.kill()
        down = web.get("/groups")
        assert down.status_code == 503
        page = down.get_data(as_text=True)
        assert f"The UI cannot reach any of the brokers at {a.url}, {b.url}." in page


def test_a_single_url_keeps_its_banner() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with ui_app(url) as app:
        page = app.test_client().get("/").get_data(as_text=True)
    assert f"The UI cannot reach the broker at {url}." in page


def test_a_malformed_url_is_refused_when_the_app_is_built() -> None:
    with pytest.raises(ValueError, match="'b:5000'"), ui_app("http://a:5000,b:5000"):
        pass
