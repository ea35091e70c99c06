"""The UI's nodes page and its liveness probe, against a real broker."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient

from minimq.client import Client
from minimq.ui import create_app
from minimq.ui.broker import close_client
from tests.support.processes import BrokerProcess, free_port


def reading(node: str, metric: str, value: float, unit: str = "%") -> dict[str, object]:
    return {"sensor_id": f"{node}-{metric}", "node": node, "metric": metric, "seq": 1,
            "value": value, "unit": unit, "timestamp": "2026-12-01T00:00:00.000Z"}  # fmt: skip


def test_a_card_per_node_with_its_newest_readings(web: FlaskClient, broker_client: Client) -> None:
    node = f"n{uuid.uuid4().hex[:6]}"
    broker_client.produce(f"{node}-cpu", reading(node, "cpu", 10.0))
    broker_client.produce(f"{node}-cpu", reading(node, "cpu", 12.5))
    broker_client.produce(f"{node}-net", reading(node, "net", 2048.0, "B/s"))
    # A topic named like a metric but holding something else is no node.
    broker_client.produce(f"x{node}-mem", {"temperature": 3})
    cards = {card["node"]: card for card in web.get("/api/nodes").get_json()["nodes"]}
    assert f"x{node}" not in cards
    assert cards[node]["metrics"]["cpu"]["value"] == 12.5
    assert cards[node]["metrics"]["net"] == {
        "value": 2048.0,
        "unit": "B/s",
        "time": cards[node]["metrics"]["net"]["time"],
    }
    page = web.get("/nodes")
    assert page.status_code == 200
    assert f'data-node="{node}"'.encode() in page.data
    assert b"12.5 %" in page.data


def test_healthz_answers_without_a_login_and_without_a_broker() -> None:
    app = create_app(f"http://127.0.0.1:{free_port()}", password="secret", secret_key="k")
    try:
        client = app.test_client()
        assert client.get("/healthz").get_json() == {"status": "ok"}
        assert client.get("/nodes").status_code == 302  # every page still needs the login
    finally:
        close_client(app)


def test_nodes_page_without_nodes_says_how_to_start_one(shared_broker: BrokerProcess) -> None:
    app = create_app(shared_broker.url, secret_key="k")
    try:
        page = app.test_client().get("/nodes")
        assert page.status_code == 200
        assert b"minimq producer --source host" in page.data
    finally:
        close_client(app)
