"""``GET /nodes``: the names of the nodes that registered, as the original broker answered.

Host-metric producers (``minimq producer --source host``) register their node
once at start by producing its name to the ``nodes`` topic, as the original's
producers did through ``POST /produce``; their readings then go to
``<node>-<metric>`` topics.  ``GET /nodes`` answers the JSON list of distinct
names in the order they first registered, e.g. ``["node-1", "node-2"]``, so the
original's consumer dashboard discovers nodes against MiniMQ unchanged.

A registration is a JSON string (``"node-1"``, what ``POST /produce`` stores
for the original's ``{"topic": "nodes", "message": "node-1"}``), a JSON object
with a ``node`` field, or plain UTF-8 text (a Kafka client's raw bytes).
Anything else is skipped.  No ``nodes`` topic yet means no nodes: ``[]``
(the original answered 500 until its first registration).
"""

from __future__ import annotations

from typing import Final

import orjson
from aiohttp import web

from minimq.core import Broker, FetchLimits, StartPosition
from minimq.errors import TopicNotFound
from minimq.server.context import context, json_response

NODES_TOPIC: Final = "nodes"
# Producers register once per start, so the topic stays small; the cap bounds
# one request's work should it not (restart loops, a stray writer).
MAX_REGISTRATIONS_READ: Final = 100_000
PAGE: Final = FetchLimits(max_records=1000, max_bytes=1024 * 1024)

routes = web.RouteTableDef()


@routes.get("/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    return json_response(await registered_nodes(context(request).broker))


async def registered_nodes(broker: Broker) -> list[str]:
    """Distinct node names of the ``nodes`` topic, first registration first."""
    try:
        topic = await broker.describe_topic(NODES_TOPIC)
    except TopicNotFound:
        return []
    seen: dict[str, int] = {}  # name -> timestamp of its first registration
    budget = MAX_REGISTRATIONS_READ
    for partition in topic.partitions:
        offset = partition.start_offset
        while offset < partition.end_offset and budget > 0:
            page = await broker.fetch(
                NODES_TOPIC, partition.partition, StartPosition.at_offset(offset), PAGE
            )
            if not page.records:
                break
            for record in page.records:
                name = node_name(record.value)
                if name is not None and name not in seen:
                    seen[name] = record.timestamp
            budget -= len(page.records)
            offset = page.next_offset
    return sorted(seen, key=seen.__getitem__)


def node_name(value: bytes | None) -> str | None:
    """The node a registration names, or None when it names none."""
    if not value:
        return None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            decoded = value.decode("utf-8").strip()
        except UnicodeDecodeError:
            return None
    if isinstance(decoded, dict):
        decoded = decoded.get("node")
    if isinstance(decoded, str) and decoded.strip():
        return decoded.strip()
    return None
