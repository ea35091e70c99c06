"""The one request middleware: metrics, errors, admission and auth in a single frame.

They used to be four middlewares; every layer is a coroutine frame and a call
per request, which measured as several microseconds of a ~35 µs request, so
they are one function now. In order, per request:

* admission: at most ``max_in_flight`` requests in flight (long-polls and
  streams included); beyond that 503 ``TOO_MANY_CONNECTIONS``.
* auth: with a token configured, every route but ``/healthz`` needs
  ``Authorization: Bearer <token>``, compared in constant time.
* errors: every failure becomes the JSON error body; MiniMQ errors through
  :mod:`minimq.server.errors`, aiohttp's own 404/405/413 likewise, and any
  unexpected exception is logged and answered with a JSON 500.
* metrics: request latency by route template (never the raw path, so label
  cardinality stays bounded); it sees every response, errors included.

Admission and auth are the :class:`~minimq.server.gate.RequestGate` that the
produce lane (:mod:`minimq.server.produce_lane`) shares.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_urldispatcher import AbstractResource

from minimq.errors import MiniMQError, TooManyConnections
from minimq.server.errors import (
    internal_error_response,
    response_for_error,
    response_for_http_exception,
)
from minimq.server.gate import RequestGate
from minimq.server.metrics import BrokerMetrics

log = logging.getLogger("minimq.server")

# Clients may send any method token; metric labels must stay a bounded set.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_middleware(metrics: BrokerMetrics, gate: RequestGate) -> Middleware:
    """The middleware for every request (see the module docstring)."""
    # Keyed by the matched resource object (one per route template, or None when
    # nothing matched) rather than its template string: a dict hit is cheaper than
    # building the histogram's labels, and the set of keys stays small.
    observers: dict[tuple[AbstractResource | None, str, int], Callable[[float], None]] = {}

    @web.middleware
    async def handle(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        response: web.StreamResponse
        try:
            gate.enter()
        except TooManyConnections as error:
            response = response_for_error(error)
        else:
            try:
                if gate.token_required:
                    authorization = request.headers.get("Authorization", "")
                    gate.check_token(request.path, authorization.encode("utf-8", "replace"))
                response = await handler(request)
            except MiniMQError as exc:
                response = response_for_error(exc)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = response_for_http_exception(exc)
            except Exception:
                log.exception("unexpected error serving %s %s", request.method, request.path)
                response = internal_error_response()
            finally:
                gate.leave()
        resource = request.match_info.route.resource
        method = request.method
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        key = (resource, method, response.status)
        observer = observers.get(key)
        if observer is None:
            route = resource.canonical if resource is not None else "unmatched"
            observer = observers[key] = metrics.request_seconds(route, method, key[2]).observe
        observer(time.perf_counter() - started)
        return response

    return handle
