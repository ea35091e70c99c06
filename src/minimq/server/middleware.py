"""Request middleware, outermost first: metrics → errors → admission → auth.

* metrics: request latency by route template (never the raw path, so label
  cardinality stays bounded); it sees every response, errors included.
* errors: every failure becomes the JSON error body; MiniMQ errors through
  :mod:`minimq.server.errors`, aiohttp's own 404/405/413 likewise, and any
  unexpected exception is logged and answered with a JSON 500.
* admission: at most ``max_connections`` requests in flight (long-polls and
  streams included); beyond that 503 ``TOO_MANY_CONNECTIONS``.
* auth: with a token configured, every route but ``/healthz`` needs
  ``Authorization: Bearer <token>``, compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from minimq.errors import MiniMQError, TooManyConnections, Unauthorized
from minimq.server.errors import error_response, response_for_error, response_for_http_exception
from minimq.server.metrics import BrokerMetrics

log = logging.getLogger("minimq.server")

OPEN_PATHS = frozenset({"/healthz"})
# Clients may send any method token; metric labels must stay a bounded set.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MiniMQError as exc:
        return response_for_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return response_for_http_exception(exc)
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(500, "INTERNAL_ERROR", "internal error; see the broker log")


def metrics_middleware(metrics: BrokerMetrics) -> Middleware:
    # labels() is comparatively slow; the (route, method, status) set is small.
    observers: dict[tuple[str, str, int], Callable[[float], None]] = {}

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        resource = request.match_info.route.resource
        method = request.method if request.method in _KNOWN_METHODS else "OTHER"
        key = (resource.canonical if resource is not None else "unmatched", method, response.status)
        observer = observers.get(key)
        if observer is None:
            labelled = metrics.request_seconds.labels(key[0], key[1], str(key[2]))
            observer = observers[key] = labelled.observe
        observer(time.perf_counter() - started)
        return response

    return observe


def admission_middleware(max_in_flight: int) -> Middleware:
    in_flight = 0

    @web.middleware
    async def admit(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if in_flight >= max_in_flight:
            raise TooManyConnections(f"more than {max_in_flight} requests in flight")
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1

    return admit


def auth_middleware(token: str) -> Middleware:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                raise Unauthorized("missing or wrong bearer token")
        return await handler(request)

    return authenticate
