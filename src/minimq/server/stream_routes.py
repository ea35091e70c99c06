"""Server-Sent Events: a topic's new records as they are appended.

Wire format, one event per record::

    event: record
    id: <partition>:<offset>
    data: <Record JSON on one line>

A ``: keep-alive`` comment goes out after 15 s without records so proxies
keep the connection open. The stream ends when the topic is deleted or the
broker shuts down.
"""

from __future__ import annotations

from aiohttp import web

from minimq.core import StartPosition
from minimq.errors import InvalidRequest
from minimq.server import inputs, serialize
from minimq.server.context import context

routes = web.RouteTableDef()

KEEP_ALIVE_S = 15.0


def _start(request: web.Request, partition: int | None) -> StartPosition:
    text = request.query.get("from", "latest")
    if text == "latest":
        return StartPosition.latest()
    if text == "earliest":
        return StartPosition.earliest()
    if partition is None:
        raise InvalidRequest("'from' as an offset needs 'partition'")
    return StartPosition.at_offset(inputs.query_int(request, "from", 0, 0, 2**62))


# No HEAD: a stream's headers are followed by a body that never ends.
@routes.get("/v1/topics/{topic}/stream", allow_head=False)
async def stream(request: web.Request) -> web.StreamResponse:
    topic = inputs.topic_name(request.match_info["topic"])
    partition = (
        inputs.query_int(request, "partition", 0, 0, 1023) if "partition" in request.query else None
    )
    start = _start(request, partition)
    cursor = context(request).broker.open_stream(topic, start, partition)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b": connected\n\n")
    try:
        while (batch := await cursor.next_batch(KEEP_ALIVE_S)) is not None:
            if not batch:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(
                b"".join(
                    b"event: record\nid: %d:%d\ndata: %s\n\n"
                    % (item.partition, item.record.offset, text)
                    for item, text in zip(batch, serialize.record_texts(topic, batch), strict=True)
                )
            )
    except ConnectionResetError:
        pass
    return response
