"""What every handler reaches through ``request.app``: the broker and its settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from minimq.core import Broker
from minimq.server import inputs
from minimq.server.config import BrokerConfig
from minimq.server.metrics import BrokerMetrics
from minimq.server.response_budget import ResponseBudget


@dataclass(frozen=True, slots=True)
class ServerContext:
    broker: Broker
    config: BrokerConfig
    metrics: BrokerMetrics
    # Large answers (fetches, streams) reserve their bytes here while they are sent.
    responses: ResponseBudget

    async def json_body(self, request: web.Request) -> dict[str, Any]:
        body = await inputs.read_json(
            request, self.config.max_body_bytes, self.config.request_timeout_s
        )
        return inputs.json_object(body)


CONTEXT = web.AppKey("context", ServerContext)


def context(request: web.Request) -> ServerContext:
    return request.app[CONTEXT]


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
