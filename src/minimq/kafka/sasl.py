"""SASL/PLAIN on the Kafka port: the broker's token as the password.

With ``--token`` set, a connection must authenticate before any API but
ApiVersions, SaslHandshake and SaslAuthenticate: SaslHandshake ``PLAIN``,
then the PLAIN message (``authzid NUL user NUL password``) in
SaslAuthenticate (handshake v1) or as one bare frame (handshake v0, the
pre-KIP-152 form). Any user name is accepted; the password is compared with
the token in constant time. A wrong password gets SASL_AUTHENTICATION_FAILED
and the connection is closed after the answer, as Kafka does.

A request before authentication is refused (:func:`refusal`): Metadata is
answered with TOPIC_AUTHORIZATION_FAILED for each topic asked for (so a
client without SASL settings reports an authorization error, not a hang),
an API with a top-level error code with SASL_AUTHENTICATION_FAILED, and
anything else by closing the connection; each is logged.

Without a token every exchange succeeds: clients configured for SASL work
against a broker that needs none.
"""

from __future__ import annotations

import datetime
import hmac
from typing import Any, Final

from kio.schema.errors import ErrorCode

from minimq.kafka.codec import error_response, has_top_level_error
from minimq.kafka.context import RequestContext, Session
from minimq.kafka.registry import ApiHandler, api

PLAIN: Final = "PLAIN"
SASL_HANDSHAKE_KEY: Final = 17
SASL_AUTHENTICATE_KEY: Final = 36
# What a connection may send before it has authenticated (ApiVersions, SASL).
OPEN_APIS: Final = frozenset({18, SASL_HANDSHAKE_KEY, SASL_AUTHENTICATE_KEY})
METADATA_KEY: Final = 3


@api(SASL_HANDSHAKE_KEY, 0, 1)
async def sasl_handshake(request: Any, ctx: RequestContext) -> Any:
    if request.mechanism != PLAIN:
        return ctx.response(error_code=ErrorCode.unsupported_sasl_mechanism, mechanisms=[PLAIN])
    ctx.session.mechanism = PLAIN
    ctx.session.raw_authentication_next = ctx.api_version == 0
    return ctx.response(error_code=ErrorCode.none, mechanisms=[PLAIN])


@api(SASL_AUTHENTICATE_KEY, 0, 1)
async def sasl_authenticate(request: Any, ctx: RequestContext) -> Any:
    if ctx.session.mechanism != PLAIN or ctx.session.authenticated:
        ctx.session.close_after_response = True
        return _authenticate_response(
            ctx, ErrorCode.illegal_sasl_state, "SaslHandshake PLAIN must come first, once"
        )
    if not authenticate_plain(ctx.session, ctx.settings.token, request.auth_bytes):
        ctx.session.close_after_response = True
        return _authenticate_response(
            ctx, ErrorCode.sasl_authentication_failed, "Authentication failed: invalid credentials"
        )
    return _authenticate_response(ctx, ErrorCode.none, None)


def _authenticate_response(ctx: RequestContext, code: ErrorCode, message: str | None) -> Any:
    return ctx.response(
        error_code=code,
        error_message=message,
        auth_bytes=b"",
        session_lifetime=datetime.timedelta(0),
    )


def authenticate_plain(session: Session, token: str | None, message: bytes) -> bool:
    """Check a PLAIN message against ``token``; mark ``session`` authenticated if it passes."""
    session.raw_authentication_next = False
    parts = bytes(message).split(b"\0")
    if len(parts) != 3:
        return False
    _, user, password = parts
    if token is not None and not hmac.compare_digest(password, token.encode()):
        return False
    session.authenticated = True
    session.principal = user.decode(errors="replace")
    return True


def needs_authentication(token: str | None, session: Session, api_key: int) -> bool:
    """True when this request must wait for SASL: a token is set and none was presented."""
    return token is not None and not session.authenticated and api_key not in OPEN_APIS


def refusal(request: Any, ctx: RequestContext) -> Any | None:
    """The answer to a request sent before authentication; None: close the connection."""
    if ctx.api_key == METADATA_KEY:
        host, port = ctx.advertised
        return ctx.response(
            throttle_time=datetime.timedelta(0),
            brokers=[
                ctx.make(
                    "MetadataResponseBroker", node_id=ctx.settings.node_id, host=host, port=port
                )
            ],
            controller_id=ctx.settings.node_id,
            topics=[
                ctx.make(
                    "MetadataResponseTopic",
                    error_code=ErrorCode.topic_authorization_failed,
                    name=topic.name,
                    partitions=[],
                )
                for topic in request.topics or ()
            ],
        )
    if has_top_level_error(ctx.response_type):
        return error_response(ctx.response_type, ErrorCode.sasl_authentication_failed)
    return None


HANDLERS: tuple[ApiHandler, ...] = (sasl_handshake, sasl_authenticate)
