"""Group requests go to the gateway that coordinates the group: served here, or passed on.

Over a backend many gateways share, each consumer group has one coordinator, the holder of
its ownership lease (:mod:`minimq.core.groups.ownership`). Every group route is wrapped in
:func:`coordinated`: it asks who owns the group (claiming it for this gateway when nobody
does) and either runs the handler here or forwards the request, same method, path, query,
body and ``Authorization`` header, to the owner's advertised URL (``--advertised-url``), and
answers with the owner's answer.

A forwarded request carries ``X-MiniMQ-Forwarded-By``; a gateway never forwards such a
request again (two gateways with different views of the lease would bounce it between them):
if it is not the owner either, it answers ``503 NOT_COORDINATOR``, which clients retry. An
owner that cannot be reached gives ``503 NOT_COORDINATOR`` too (nothing happened there); one
that stopped answering after the request was sent gives ``504``, since the request may have
been applied.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
import orjson
from aiohttp import hdrs, web

from minimq.core.storage_seam import GatewayAddress
from minimq.errors import NotCoordinator
from minimq.server.context import context
from minimq.server.errors import error_response

FORWARDED_BY: Final = "X-MiniMQ-Forwarded-By"
# Connecting to a live gateway is quick; a dead one should be given up on soon.
CONNECT_TIMEOUT_S: Final = 5.0
# How often a forwarded request checks that its own client is still there.
REQUESTER_CHECK_S: Final = 0.25
# Headers of the request the owner needs to see as the client sent them.
_PASSED_ON: Final = (hdrs.AUTHORIZATION, hdrs.ACCEPT, hdrs.CONTENT_TYPE)
# Headers of the owner's answer worth keeping (the body's type, retry and auth hints).
_ANSWERED_WITH: Final = (hdrs.CONTENT_TYPE, hdrs.RETRY_AFTER, hdrs.WWW_AUTHENTICATE, hdrs.ALLOW)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GroupForwarder:
    """One HTTP client session per application, for requests to other gateways."""

    def __init__(self, max_connections: int) -> None:
        # The owner counts every forwarded connection against this gateway's address
        # (--max-connections-per-address): never open more than it accepts.
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Bodies are decoded here (and passed on without a Content-Encoding).
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections)
            )
        return self._session

    async def close(self, app: web.Application | None = None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


FORWARDER = web.AppKey("group_forwarder", GroupForwarder)


def _read_timeout_s(request: web.Request) -> float:
    """How long the owner may take: the request's own long-poll wait plus the usual timeout."""
    try:
        wait_ms = int(request.query.get("wait_ms", "0"))
    except ValueError:
        wait_ms = 0
    return max(wait_ms, 0) / 1000 + context(request).config.request_timeout_s + 5


async def _body(request: web.Request) -> bytes | None:
    """The request's JSON body as the owner should get it (parsed here: bounded, strict)."""
    if request.method not in (hdrs.METH_POST, hdrs.METH_PUT, hdrs.METH_PATCH):
        return None
    if not request.body_exists:
        return None
    return orjson.dumps(await context(request).json_body(request))


async def _exchange(
    request: web.Request, url: str, body: bytes | None, headers: dict[str, str]
) -> web.Response:
    """One request to the owner and its whole answer."""
    config = context(request).config
    timeout = aiohttp.ClientTimeout(
        total=None,
        # Waiting for a pooled connection counts here: bounded like any request.
        connect=config.request_timeout_s,
        sock_connect=CONNECT_TIMEOUT_S,
        sock_read=_read_timeout_s(request),
    )
    session = request.app[FORWARDER].session()
    async with session.request(
        request.method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
    ) as answer:
        payload = await answer.read()
        response = web.Response(status=answer.status, body=payload)
        for name in _ANSWERED_WITH:
            if name in answer.headers:
                response.headers[name] = answer.headers[name]
        return response


def _requester_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def forward(request: web.Request, owner: GatewayAddress, me: GatewayAddress) -> web.Response:
    """Send ``request`` to ``owner`` and answer with what it answered.

    A client that hangs up while the owner works on its request (a long-poll,
    say) makes this gateway hang up on the owner too, so the owner, which
    checks its own requester before handing records out, hands none to nobody.
    """
    body = await _body(request)
    headers: dict[str, str] = {
        name: request.headers[name] for name in _PASSED_ON if name in request.headers
    }
    headers[FORWARDED_BY] = me.http_url
    url = owner.http_url.rstrip("/") + request.rel_url.path_qs
    exchange = asyncio.ensure_future(_exchange(request, url, body, headers))
    try:
        while not exchange.done():
            await asyncio.wait({exchange}, timeout=REQUESTER_CHECK_S)
            if not exchange.done() and _requester_gone(request):
                exchange.cancel()
                return web.Response(status=499)  # nobody reads it
        return exchange.result()
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        # No connection was made, so nothing was sent: safe for the client to try again.
        raise NotCoordinator(
            f"group coordinator at {owner.http_url} cannot be reached ({exc}); try again"
        ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        return error_response(
            504,
            NotCoordinator.code,
            f"group coordinator at {owner.http_url} did not answer ({type(exc).__name__});"
            " the request may or may not have been applied there",
        )
    finally:
        if not exchange.done():
            exchange.cancel()  # this handler itself was cancelled


def coordinated(group_of: Callable[[web.Request], str]) -> Callable[[Handler], Handler]:
    """Run the handler on the group's coordinator: here, or forwarded to the owner."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def routed(request: web.Request) -> web.StreamResponse:
            group = group_of(request)
            ownership = context(request).broker.groups.ownership
            owner = await ownership.remote_owner(group)
            me = ownership.me
            if owner is None or me is None:
                return await handler(request)
            if FORWARDED_BY in request.headers:
                raise NotCoordinator(
                    f"group {group!r} is coordinated by {owner.http_url}, and this request"
                    f" was already forwarded once (by {request.headers[FORWARDED_BY]}); try"
                    " again"
                )
            return await forward(request, owner, me)

        return routed

    return wrap


__all__ = ["FORWARDED_BY", "FORWARDER", "GroupForwarder", "coordinated", "forward"]
