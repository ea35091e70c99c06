"""Admission and auth: the checks every request passes, whichever way it came in.

Requests reach the broker through aiohttp (every route, via the middleware) or
through the produce lane (:mod:`minimq.server.produce_lane`); both go through
one :class:`RequestGate`, so the in-flight cap counts all of them and a token
guards both alike.

Concurrency: event-loop thread only; the counter is a plain int for that reason.
"""

from __future__ import annotations

import hmac

from minimq.errors import TooManyConnections, Unauthorized

OPEN_PATHS = frozenset({"/healthz"})


class RequestGate:
    """At most ``max_in_flight`` requests in flight; with a token, a bearer check."""

    __slots__ = ("_expected", "in_flight", "max_in_flight")

    def __init__(self, max_in_flight: int, token: str | None) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._expected = f"Bearer {token}".encode() if token else None

    @property
    def token_required(self) -> bool:
        return self._expected is not None

    def enter(self) -> None:
        """Count one more request in flight, or raise ``TooManyConnections``; pair with leave()."""
        if self.in_flight >= self.max_in_flight:
            raise TooManyConnections(f"more than {self.max_in_flight} requests in flight")
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1

    def check_token(self, path: str, authorization: bytes) -> None:
        """Raise ``Unauthorized`` unless ``path`` is open or ``authorization`` carries the token."""
        # Constant time, so the comparison does not leak how much of a guess was right.
        if (
            self._expected is not None
            and path not in OPEN_PATHS
            and not hmac.compare_digest(authorization, self._expected)
        ):
            raise Unauthorized("missing or wrong bearer token")
