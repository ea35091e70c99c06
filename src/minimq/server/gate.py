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
_BEARER = b"bearer"
# Optional whitespace around a header value (RFC 9110 OWS); parsers strip it too.
_OWS = b" \t"


def bearer_credentials(authorization: bytes) -> bytes | None:
    """The token of an ``Authorization`` value in the Bearer scheme, or None.

    RFC 7235: ``credentials = auth-scheme [ 1*SP token68 ]``, and the scheme is
    case-insensitive, so ``Bearer t``, ``bearer t`` and ``BEARER  t`` all carry
    ``t``. Surrounding whitespace is not part of the value. The bytes are the
    ones the client sent: nothing is decoded, so no two different tokens can
    compare equal (a lossy decoding would turn every invalid byte into ``?``).
    """
    scheme, _, token = authorization.strip(_OWS).partition(b" ")
    if scheme.lower() != _BEARER:
        return None
    return token.lstrip(b" ") or None


class RequestGate:
    """At most ``max_in_flight`` requests in flight; with a token, a bearer check."""

    __slots__ = ("_canonical", "_expected", "in_flight", "max_in_flight")

    def __init__(self, max_in_flight: int, token: str | None) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._expected = token.encode() if token else None
        self._canonical = b"Bearer " + self._expected if self._expected else b""

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
        """Raise ``Unauthorized`` unless ``path`` is open or ``authorization`` carries the token.

        ``authorization`` is the header's value as raw bytes (empty when absent),
        read by :func:`bearer_credentials` on both ways in, so they judge alike.
        """
        if self._expected is None or path in OPEN_PATHS:
            return
        # The usual spelling first: one comparison, no parsing, for nearly every request.
        if hmac.compare_digest(authorization, self._canonical):
            return
        credentials = bearer_credentials(authorization)
        # Constant time, so the comparison does not leak how much of a guess was right.
        if credentials is None or not hmac.compare_digest(credentials, self._expected):
            raise Unauthorized("missing or wrong bearer token")
