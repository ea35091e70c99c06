"""The one request middleware: metrics, errors, admission and auth in a single frame.

They used to be four middlewares; every layer is a coroutine frame and a call
per request, which measured as several microseconds of a ~35 µs request, so
they are one function now. In order, per request:

* placement: a connection's first request places it with the connection
  limiter (:mod:`minimq.server.connection_limit`); beyond the share of
  connections without the token it is refused, 503 ``TOO_MANY_CONNECTIONS``,
  or for ``/healthz`` answered, and the connection closed either way.
* admission: at most ``max_in_flight`` requests in flight (long-polls and
  streams included); beyond that 503 ``TOO_MANY_CONNECTIONS``.
* auth: with a token configured, every route but ``/healthz`` needs
  ``Authorization: Bearer <token>`` (:func:`~minimq.server.gate.bearer_credentials`:
  the scheme in any case), compared in constant time.
* expectations: ``Expect: 100-continue`` is met by the body reader, which
  sends ``100 Continue`` only once the request has passed every check that
  needs no body (auth, a declared length over the limit, ...); any other
  expectation is ``417 EXPECTATION_FAILED``. A request that expected
  ``100-continue`` and is answered before its body arrived is answered with
  ``Connection: close``: its client may never send that body, and bytes it
  sends next must not be read as one. aiohttp's own expect handling (a 100
  before any check, a plain-text 417) is replaced on every route by
  :func:`defer_expectation`.
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

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_urldispatcher import AbstractResource

from minimq.errors import ExpectationFailed, MiniMQError, TooManyConnections
from minimq.server.connection_limit import REFUSE, SERVE, SHARE_FULL, ConnectionSlot
from minimq.server.errors import (
    internal_error_response,
    response_for_error,
    response_for_http_exception,
)
from minimq.server.gate import RequestGate
from minimq.server.inputs import CONTINUE
from minimq.server.metrics import BrokerMetrics

log = logging.getLogger("minimq.server")

# Clients may send any method token; metric labels must stay a bounded set.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def defer_expectation(request: web.Request) -> None:
    """Every route's ``expect_handler``: leave ``Expect`` to the middleware and the body reader."""


def _check_expectation(request: web.Request, expect: str) -> None:
    # HTTP/1.0 has no expectations (RFC 9110 10.1.1: ignore them), as aiohttp ignores them.
    if request.version >= (1, 1) and expect.lower() != CONTINUE:
        raise ExpectationFailed(f"cannot meet the expectation {expect[:100]!r}")


def _place(slot: ConnectionSlot, request: web.Request) -> int:
    # The first request on a connection decides its place in the connection limiter.
    authorization = request.headers.get(hdrs.AUTHORIZATION, "")
    return slot.place(request.path, authorization.encode("utf-8", "surrogateescape"))


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
        verdict = SERVE
        slot = getattr(request.protocol, "connection_slot", None)
        if slot is not None and not slot.placed:
            verdict = _place(slot, request)
        try:
            if verdict == REFUSE:
                raise TooManyConnections(SHARE_FULL)
            gate.enter()
        except TooManyConnections as error:
            response = response_for_error(error)
        else:
            expect = request.headers.get(hdrs.EXPECT)
            try:
                if gate.token_required:
                    authorization = request.headers.get("Authorization", "")
                    # aiohttp decoded the header with surrogateescape: this gives
                    # back the very bytes the client sent, as the lane compares.
                    gate.check_token(request.path, authorization.encode("utf-8", "surrogateescape"))
                if expect is not None:
                    _check_expectation(request, expect)
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
            if expect is not None and not request.content.is_eof():
                response.force_close()
        if verdict != SERVE:
            response.force_close()
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
