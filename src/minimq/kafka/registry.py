"""How a Kafka API handler declares itself: ``@api(key, min_version, max_version)``.

A handler is ``async def handle(request, ctx) -> response | None``: the kio
request dataclass of exactly ``ctx.api_version``, and the
:class:`~minimq.kafka.context.RequestContext`. It makes one call on the core
and returns the response built with ``ctx.response(...)``, or None for "no
response" (Produce with acks=0). The versions it declares are the versions
advertised in ApiVersions (:mod:`minimq.kafka.apis`); a request at any
other version never reaches it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minimq.kafka.context import RequestContext

HandlerFunction = Callable[[Any, "RequestContext"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ApiHandler:
    api_key: int
    min_version: int
    max_version: int
    function: HandlerFunction

    @property
    def name(self) -> str:
        return self.function.__name__

    def advertises(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


def api(
    api_key: int, min_version: int, max_version: int
) -> Callable[[HandlerFunction], ApiHandler]:
    """Declare ``function`` the handler of ``api_key`` at versions ``min``..``max``."""

    def declare(function: HandlerFunction) -> ApiHandler:
        return ApiHandler(api_key, min_version, max_version, function)

    return declare
