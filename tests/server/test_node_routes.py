"""``GET /nodes``: the original's list of registered node names, on a real broker."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.processes import BrokerProcess


def test_no_nodes_topic_means_no_nodes(broker: BrokerProcess) -> None:
    answer = httpx.get(f"{broker.url}/nodes")
    assert (answer.status_code, answer.json()) == (200, [])


def test_each_registered_node_once_in_the_order_it_first_registered(
    broker: BrokerProcess,
) -> None:
    for message in ("edge-2", {"node": "edge-1", "since": 3}, "edge-2", 42, {"other": 1}, " "):
        answer = httpx.post(f"{broker.url}/produce", json={"topic": "nodes", "message": message})
        assert answer.status_code == 201
    assert httpx.get(f"{broker.url}/nodes").json() == ["edge-2", "edge-1"]


def test_nodes_needs_the_token_when_the_broker_has_one(data_dir: Path) -> None:
    with BrokerProcess(data_dir, ["--token", "t0ken"]) as broker:
        assert httpx.get(f"{broker.url}/nodes").status_code == 401
        answer = httpx.get(f"{broker.url}/nodes", headers={"Authorization": "Bearer t0ken"})
        assert (answer.status_code, answer.json()) == (200, [])
