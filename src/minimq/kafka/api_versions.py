"""ApiVersions (key 18): the versions of every API this broker serves.

The ranges come from the handler table itself (:mod:`minimq.kafka.apis`),
so nothing is advertised that has no handler. A request above the highest
version (kafka-python 2.3+ opens with v4, librdkafka with v3) is answered
before it is decoded, by :func:`unsupported_version_response`: a v0 body
with UNSUPPORTED_VERSION and this API's own range, so the client retries at
a version both sides know (KIP-511). The response header is v0 at every
version, as Kafka's is.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.api_versions.v0.response import ApiVersion, ApiVersionsResponse
from kio.schema.errors import ErrorCode
from kio.static.primitive import i16

from minimq.kafka.context import RequestContext
from minimq.kafka.registry import ApiHandler, api

API_VERSIONS_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 2


@api(API_VERSIONS_KEY, MIN_VERSION, MAX_VERSION)
async def api_versions(request: Any, ctx: RequestContext) -> Any:
    return ctx.response(
        error_code=ErrorCode.none,
        api_keys=[
            ctx.make(
                "ApiVersion",
                api_key=handler.api_key,
                min_version=handler.min_version,
                max_version=handler.max_version,
            )
            for handler in sorted(ctx.apis.values(), key=lambda h: h.api_key)
        ],
        throttle_time=datetime.timedelta(0),
    )


def unsupported_version_response() -> ApiVersionsResponse:
    """The KIP-511 answer to an ApiVersions request of a version above :data:`MAX_VERSION`."""
    return ApiVersionsResponse(
        error_code=ErrorCode.unsupported_version,
        api_keys=(
            ApiVersion(
                api_key=i16(API_VERSIONS_KEY),
                min_version=i16(MIN_VERSION),
                max_version=i16(MAX_VERSION),
            ),
        ),
    )


HANDLERS: tuple[ApiHandler, ...] = (api_versions,)
