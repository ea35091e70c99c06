"""The aiohttp application: routes, middleware, metrics and the OpenAPI document."""

from __future__ import annotations

from importlib import resources

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from minimq.core import Broker
from minimq.server import group_routes, node_routes, stream_routes, topic_routes
from minimq.server.config import BrokerConfig
from minimq.server.context import CONTEXT, ServerContext, context
from minimq.server.gate import RequestGate
from minimq.server.group_forwarding import FORWARDER, GroupForwarder
from minimq.server.metrics import BrokerMetrics
from minimq.server.middleware import defer_expectation, request_middleware
from minimq.server.response_budget import ResponseBudget
from minimq.server.tuning import release_freed_memory

OPENAPI_DOCUMENT = resources.files("minimq.server").joinpath("openapi.json").read_bytes()

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    broker_metrics = context(request).metrics
    await broker_metrics.refresh()
    body = generate_latest(broker_metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI_DOCUMENT, content_type="application/json")


async def _wake_waiters(app: web.Application) -> None:
    # Long-polls and streams end now so shutdown only waits for short requests.
    app[CONTEXT].broker.wake_all()


def _add_routes(app: web.Application, table: web.RouteTableDef) -> None:
    """``table``'s routes, each leaving ``Expect`` to the middleware, not to aiohttp."""
    for route in table:
        assert isinstance(route, web.RouteDef)  # no static routes in the broker
        kwargs = {**route.kwargs, "expect_handler": defer_expectation}
        app.router.add_routes([web.RouteDef(route.method, route.path, route.handler, kwargs)])


def create_app(
    broker: Broker, config: BrokerConfig, metrics: BrokerMetrics, gate: RequestGate | None = None
) -> web.Application:
    """The broker's HTTP application; ``metrics`` must be the broker's observer.

    ``gate`` is shared with the produce lane when there is one.
    """
    if gate is None:
        gate = RequestGate(config.max_connections, config.token)
    app = web.Application(
        middlewares=[request_middleware(metrics, gate)],
        client_max_size=config.max_body_bytes,
    )
    responses = ResponseBudget(
        config.response_buffer_bytes, config.write_timeout_s, release_freed_memory
    )
    metrics.watch_responses(responses)
    app[CONTEXT] = ServerContext(broker, config, metrics, responses)
    for table in (
        routes,
        topic_routes.routes,
        group_routes.routes,
        stream_routes.routes,
        node_routes.routes,
    ):
        _add_routes(app, table)
    forwarder = GroupForwarder(config.max_connections_per_address)
    app[FORWARDER] = forwarder
    app.on_shutdown.append(_wake_waiters)
    app.on_cleanup.append(forwarder.close)
    return app
