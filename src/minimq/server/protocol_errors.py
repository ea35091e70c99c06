"""Errors aiohttp answers itself, before any handler runs, in MiniMQ's JSON shape.

A request that is not valid HTTP/1.1 framing (conflicting Content-Length and
Transfer-Encoding, a bad chunk size, an over-long header line, a method that is
not a token...) never reaches a route or the middleware: aiohttp's connection
handler answers it with a plain-text 400 and closes the connection. Clients
should not need a second way to read errors, so :class:`JsonErrorRequestHandler`
answers those with the same ``{"error": {"code", "message"}}`` body as every
other error, code ``BAD_HTTP_REQUEST``, and logs them at INFO: they are the
client's fault, and a traceback per malformed request would let anyone flood
the broker's log.

One more answer escapes the middleware: on a path no route matches, aiohttp's
own expect handler still runs first and raises a plain-text ``417`` for an
expectation other than ``100-continue``. :meth:`JsonErrorRequestHandler.finish_response`
turns any such ``HTTPException`` into the same JSON body as the middleware would.

Concurrency: runs on the event-loop thread only, like the handler it extends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from minimq.server.errors import (
    error_response,
    internal_error_response,
    response_for_http_exception,
)

if TYPE_CHECKING:
    from minimq.server.connection_limit import ConnectionSlot

log = logging.getLogger("minimq.server")

BAD_HTTP_REQUEST = "BAD_HTTP_REQUEST"
# aiohttp's messages quote the offending bytes; an answer need not echo kilobytes.
_MAX_MESSAGE_CHARS = 300


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's per-connection handler with JSON bodies for its own error answers.

    ``connection_slot`` is the connection's place in the connection limiter
    (:mod:`minimq.server.connection_limit`), released when the connection closes.
    """

    connection_slot: ConnectionSlot | None = None

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self.connection_slot is not None:
            self.connection_slot.release()

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            resp = response_for_http_exception(resp)
        return await super().finish_response(request, resp, start_time)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("error serving %s %s", request.method, request.path, exc_info=exc)
        else:
            log.info("malformed HTTP request from %s: %s", request.remote, message or exc)
        if request.writer.output_size > 0:
            # Part of an answer is on the wire already; aiohttp drops the connection.
            raise ConnectionError("cannot answer with an error: a response was already started")
        if status >= 500:
            response = internal_error_response(status)
        else:
            detail = (message or str(exc) or "malformed request")[:_MAX_MESSAGE_CHARS]
            response = error_response(status, BAD_HTTP_REQUEST, f"malformed HTTP request: {detail}")
        response.force_close()
        return response


def request_handler(server: web.Server, slot: ConnectionSlot | None = None) -> asyncio.Protocol:
    """A new connection handler for ``server``, as ``server()`` would make, JSON errors included."""
    # web.Server keeps the handler options (timeouts, limits) it was created with in
    # _kwargs and offers no hook for the handler class: make it the way it does.
    handler = JsonErrorRequestHandler(server, loop=server._loop, **server._kwargs)
    handler.connection_slot = slot
    return handler
