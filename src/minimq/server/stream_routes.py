"""Server-Sent Events: a topic's new records as they are appended.

Wire format, one event per record::

    event: record
    id: <partition>:<offset>
    data: <Record JSON on one line>

A ``: keep-alive`` comment goes out after 15 s without records so proxies
keep the connection open. The stream ends when the topic is deleted or the
broker shuts down.

A batch is at most about 1 MiB of records, reserved in the broker's response
budget while it is written (:mod:`minimq.server.response_budget`); when the
budget has no room, the stream puts the batch back and waits. A client that
reads nothing for the write timeout is dropped.
"""

from __future__ import annotations

from aiohttp import web

from minimq.core import StartPosition
from minimq.core.broker import StreamCursor
from minimq.errors import InvalidRequest
from minimq.server import inputs, serialize
from minimq.server.context import context
from minimq.server.response_budget import ResponseBudget, write_pieces

routes = web.RouteTableDef()

KEEP_ALIVE_S = 15.0
_LINE_BREAKS_AS_SPACES = bytes.maketrans(b"\r\n", b"  ")


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
    cursor = await context(request).broker.open_stream(topic, start, partition)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    budget = context(request).responses
    await response.prepare(request)
    try:
        going = await write_pieces(request, response, b": connected\n\n", budget)
        while going:
            going = await _send_next_batch(request, response, cursor, budget)
    except ConnectionResetError:
        pass
    return response


def _one_line(text: bytes) -> bytes:
    """``text`` (a Record's JSON) fit for one ``data:`` line.

    A JSON value from a producer other than the HTTP API may be spread over
    lines. In valid JSON a raw CR or LF can only be blank space between
    tokens (inside a string it must be escaped), so writing it as a space
    keeps the same JSON and the event whole.
    """
    if b"\n" in text or b"\r" in text:
        return text.translate(_LINE_BREAKS_AS_SPACES)
    return text


async def _send_next_batch(
    request: web.Request, response: web.StreamResponse, cursor: StreamCursor, budget: ResponseBudget
) -> bool:
    """Wait for the next batch and send it; False once the stream is over.

    A function of its own so that a batch is freed as soon as it is sent, not
    held through the next wait.
    """
    batch = await cursor.next_batch(KEEP_ALIVE_S)
    if batch is None:
        return False
    if not batch:
        return await write_pieces(request, response, b": keep-alive\n\n", budget)
    texts = serialize.record_texts(cursor.topic, batch)
    events = b"".join(
        b"event: record\nid: %d:%d\ndata: %s\n\n"
        % (item.partition, item.record.offset, _one_line(text))
        for item, text in zip(batch, texts, strict=True)
    )
    del texts
    if not budget.reserve(len(events)):
        cursor.unread(batch)
        del batch, events
        await budget.wait_for_room(KEEP_ALIVE_S)
        return True
    try:
        return await write_pieces(request, response, events, budget)
    finally:
        budget.release(len(events))
