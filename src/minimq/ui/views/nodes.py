"""Host metrics (``/nodes``): a card per node with its latest CPU, memory, disk and network.

The host-metric producers (``minimq producer --source host``) write each
metric of a node to the topic ``<node>-<metric>`` as a JSON reading that
names its ``node`` and ``metric`` (:mod:`minimq.producer.host_metrics`).
This page finds those topics in the topic list, reads the newest record of
each, and groups the readings by the node they name; ``/api/nodes`` answers
the same cards as JSON for the page's once-a-second refresh.
"""

from __future__ import annotations

import re
from typing import Any, Final

from flask import Blueprint, Response, jsonify, render_template

from minimq.client import Client, TopicInfo
from minimq.ui.broker import broker
from minimq.ui.records import format_time

blueprint = Blueprint("nodes", __name__)

METRICS: Final = ("cpu", "mem", "disk", "net")
LABELS: Final = {"cpu": "CPU", "mem": "Memory", "disk": "Disk", "net": "Network"}
_METRIC_TOPIC: Final = re.compile(r"(.+)-(cpu|mem|disk|net)")
# Each node costs one fetch per metric and refresh; a page of this many stays quick.
MAX_NODES: Final = 50


@blueprint.get("/nodes")
def nodes_page() -> str:
    return render_template("nodes.html", nodes=node_cards(broker()), metrics=METRICS, labels=LABELS)


@blueprint.get("/api/nodes")
def nodes_api() -> Response:
    return jsonify(nodes=node_cards(broker()))


def node_cards(client: Client) -> list[dict[str, Any]]:
    """One card per node, by name: ``{"node", "updated", "metrics": {metric: reading}}``."""
    cards: dict[str, dict[str, Any]] = {}
    for topic in client.list_topics():
        if _METRIC_TOPIC.fullmatch(topic.name) is None:
            continue
        reading = _newest_reading(client, topic)
        if reading is None:
            continue
        value, timestamp = reading
        node, metric = value["node"], value["metric"]
        if node not in cards and len(cards) == MAX_NODES:
            continue
        card = cards.setdefault(node, {"node": node, "updated": "", "metrics": {}, "_ts": 0})
        card["metrics"][metric] = {
            "value": value["value"],
            "unit": value.get("unit", ""),
            "time": format_time(timestamp),
        }
        if timestamp > card["_ts"]:
            card["_ts"], card["updated"] = timestamp, format_time(timestamp)
    for card in cards.values():
        del card["_ts"]
    return [cards[name] for name in sorted(cards)]


def _newest_reading(client: Client, topic: TopicInfo) -> tuple[dict[str, Any], int] | None:
    """The newest record of ``topic`` when it is a host reading: (its value, its timestamp)."""
    newest: tuple[dict[str, Any], int] | None = None
    for partition in topic.partition_info:
        if partition.end_offset <= partition.start_offset:
            continue
        page = client.fetch(
            topic.name, partition.partition, offset=partition.end_offset - 1, limit=1
        )
        for record in page.records:
            value = record.value
            if not (
                isinstance(value, dict)
                and isinstance(value.get("node"), str)
                and value.get("metric") in METRICS
                and isinstance(value.get("value"), int | float)
            ):
                continue
            if newest is None or record.timestamp > newest[1]:
                newest = (value, record.timestamp)
    return newest
