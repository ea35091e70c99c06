"""Handlers for topics, produce and fetch (v1) and the original produce/consume.

Each handler validates its input, makes one call on the ``Broker`` and
serializes the result; errors propagate to the error middleware.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import Any, Final

import orjson
from aiohttp import web

from minimq.core import Broker, FetchLimits, FetchResult, ProduceRecord
from minimq.core.topic_config import DEFAULT_SEGMENT_BYTES, FsyncPolicy, TopicConfig
from minimq.errors import InvalidRequest
from minimq.server import inputs, serialize, value_rule
from minimq.server.context import context, json_response
from minimq.server.group_forwarding import coordinated
from minimq.server.response_budget import (
    DIRECT_BYTES,
    ResponseBudget,
    prefix_within,
    send_body,
)

routes = web.RouteTableDef()

_TOPIC_FIELDS = frozenset(
    {
        "name",
        "partitions",
        "retention_ms",
        "retention_bytes",
        "segment_bytes",
        "fsync",
        "message_timestamp_before_max_ms",
        "message_timestamp_after_max_ms",
    }
)
_UPDATABLE_TOPIC_FIELDS = frozenset({"retention_ms", "retention_bytes"})
_RECORD_FIELDS = frozenset({"value", "key", "headers", "partition", "timestamp"})
_MAX_PARTITIONS = 1024
_MAX_I64 = 2**63 - 1
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/v1/topics")
async def list_topics(request: web.Request) -> web.Response:
    infos = await context(request).broker.list_topics()
    return json_response({"topics": [serialize.topic_info(info) for info in infos]})


@routes.post("/v1/topics")
async def create_topic(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await ctx.json_body(request)
    inputs.reject_unknown(body, _TOPIC_FIELDS, "topic")
    name = inputs.topic_name(inputs.field(body, "name", str, required=True) or "")
    fsync_text = inputs.field(body, "fsync", str)
    fsync = FsyncPolicy.parse(fsync_text) if fsync_text is not None else None
    config = TopicConfig(
        partitions=inputs.int_field(body, "partitions", 1, _MAX_PARTITIONS)
        or ctx.config.default_partitions,
        retention_ms=inputs.int_field(body, "retention_ms", 1, _MAX_I64),
        retention_bytes=inputs.int_field(body, "retention_bytes", 1, _MAX_I64),
        segment_bytes=inputs.int_field(body, "segment_bytes", 4096, 2**31 - 1)
        or DEFAULT_SEGMENT_BYTES,
        fsync=fsync,
        # 0 is a valid bound (Kafka's atLeast(0)); _MAX_I64 is Kafka's "unbounded".
        message_timestamp_before_max_ms=inputs.int_field(
            body, "message_timestamp_before_max_ms", 0, _MAX_I64
        ),
        message_timestamp_after_max_ms=inputs.int_field(
            body, "message_timestamp_after_max_ms", 0, _MAX_I64
        ),
    )
    info = await ctx.broker.create_topic(name, config)
    return json_response(serialize.topic_info(info), status=201)


@routes.get("/v1/topics/{topic}")
async def describe_topic(request: web.Request) -> web.Response:
    topic = inputs.topic_name(request.match_info["topic"])
    info = await context(request).broker.describe_topic(topic)
    return json_response(serialize.topic_info(info))


@routes.patch("/v1/topics/{topic}")
async def update_topic(request: web.Request) -> web.Response:
    """Change retention: the fields given (``null``: unlimited), bounded as at creation."""
    ctx = context(request)
    topic = inputs.topic_name(request.match_info["topic"])
    body = await ctx.json_body(request)
    inputs.reject_unknown(body, _UPDATABLE_TOPIC_FIELDS, "topic update")
    if not body:
        raise InvalidRequest(
            f"give at least one of {', '.join(sorted(_UPDATABLE_TOPIC_FIELDS))} (null: unlimited)"
        )
    changes = {name: inputs.int_field(body, name, 1, _MAX_I64) for name in body}
    info = await ctx.broker.update_topic_config(topic, changes)
    return json_response(serialize.topic_info(info))


@routes.delete("/v1/topics/{topic}")
async def delete_topic(request: web.Request) -> web.Response:
    topic = inputs.topic_name(request.match_info["topic"])
    await context(request).broker.delete_topic(topic)
    return web.Response(status=204)


def _produce_records(raw_records: list[Any]) -> list[ProduceRecord]:
    """The request's records; value-only ones (the common case) on a fast path.

    ``tuple.__new__`` skips the NamedTuple's Python-level ``__new__``: with
    ``orjson.dumps`` this is most of the cost per record of a batch produce.
    """
    new, dumps = tuple.__new__, orjson.dumps
    return [
        new(ProduceRecord, (dumps(raw["value"]), None, (), None, None))
        if type(raw) is dict and len(raw) == 1 and "value" in raw
        else _produce_record(raw)
        for raw in raw_records
    ]


def _produce_record(raw: Any) -> ProduceRecord:
    item = inputs.json_object(raw, "each record")
    inputs.reject_unknown(item, _RECORD_FIELDS, "record")
    if "value" not in item:
        raise InvalidRequest("'value' is required in each record")
    key = inputs.field(item, "key", str)
    headers = inputs.field(item, "headers", dict) or {}
    encoded_headers = []
    for name, value in headers.items():
        if not isinstance(value, str):
            raise InvalidRequest("header values must be strings")
        encoded_headers.append((name, value.encode()))
    return ProduceRecord(
        value=orjson.dumps(item["value"]),
        key=key.encode() if key is not None else None,
        headers=tuple(encoded_headers),
        partition=inputs.int_field(item, "partition", 0, _MAX_PARTITIONS - 1),
        timestamp=inputs.int_field(item, "timestamp", 0, _MAX_I64),
    )


def _header_idempotency_key(request: web.Request) -> str | None:
    """The raw ``Idempotency-Key`` of an aiohttp request (the lane hands repeated ones here)."""
    values = request.headers.getall(IDEMPOTENCY_KEY_HEADER, [])
    if len(values) > 1:
        raise InvalidRequest(f"at most one {IDEMPOTENCY_KEY_HEADER} header")
    return values[0] if values else None


def idempotency_key(raw: str | None) -> str | None:
    """The checked ``Idempotency-Key`` header value: 1-255 visible ASCII characters.

    Blanks around it are not part of it (RFC 9110), on either path in.
    """
    if raw is None:
        return None
    key = raw.strip(" \t")
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequest(
            f"{IDEMPOTENCY_KEY_HEADER} must be 1-255 visible ASCII characters (a UUID, say)"
        )
    return key


@routes.post("/v1/topics/{topic}/records")
async def produce(request: web.Request) -> web.Response:
    ctx = context(request)
    topic = inputs.topic_name(request.match_info["topic"])
    key = _header_idempotency_key(request)
    body = await ctx.json_body(request)
    return json_response(await produce_records(ctx.broker, topic, body, key))


async def produce_records(
    broker: Broker, topic: str, body: dict[str, Any], raw_key: str | None = None
) -> dict[str, Any]:
    """``POST /v1/topics/{topic}/records`` once the topic name is checked and the body parsed.

    Shared by the route above and the produce lane, which must answer alike;
    ``raw_key`` is the ``Idempotency-Key`` header as it came.
    """
    inputs.reject_unknown(body, frozenset({"records"}), "request body")
    raw_records = inputs.field(body, "records", list, required=True) or []
    if not 1 <= len(raw_records) <= inputs.MAX_PRODUCE_RECORDS:
        raise InvalidRequest(f"'records' must hold 1 to {inputs.MAX_PRODUCE_RECORDS} records")
    records = _produce_records(raw_records)
    offsets = await broker.produce(topic, records, idempotency_key(raw_key))
    return {"topic": topic, "offsets": serialize.positions(offsets)}


@routes.get("/v1/topics/{topic}/partitions/{partition}/records")
async def fetch(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    topic = inputs.topic_name(request.match_info["topic"])
    partition = inputs.path_partition(request)
    start = inputs.start_position(request, "offset")
    limits = fetch_limits(request, ctx.responses)
    result = await ctx.broker.fetch(topic, partition, start, limits)
    body, reserved = _fetch_body(topic, partition, result, ctx.responses)
    del result  # while the body is sent, only the body is held
    if not reserved:
        return web.Response(body=body, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    return await send_body(request, response, body, ctx.responses, reserved)


def _fetch_body(
    topic: str, partition: int, result: FetchResult, budget: ResponseBudget
) -> tuple[bytes, int]:
    """The fetch answer and the bytes it reserved in ``budget`` (0 for a small one).

    Called in the event-loop step of the read (no await in between), so the
    budget counts this body before any other request can build one. When the
    budget is short, the answer holds fewer records (down to what fits in a
    small answer, which needs no budget) and the client goes on from its
    ``next_offset``; only a first record too large for a small answer, with
    the budget spent, is refused.
    """
    texts = serialize.record_texts(topic, zip(repeat(partition), result.records))
    count = len(texts)
    # Each record with its comma; map/sum run in C (this is every large fetch).
    size = serialize.fetch_envelope_bytes(topic, partition) + sum(map(len, texts)) + count
    reserved = 0
    if size > DIRECT_BYTES:
        if budget.reserve(size):
            reserved = size
        else:
            count, reserved = _shrink_to_budget(topic, partition, texts, budget)
    records = result.records
    next_offset = records[count - 1].offset + 1 if count < len(records) else result.next_offset
    body = serialize.fetch_body(
        topic,
        partition,
        texts if count == len(texts) else texts[:count],
        next_offset=next_offset,
        high_watermark=result.high_watermark,
        start_offset=result.start_offset,
    )
    return body, reserved


def _shrink_to_budget(
    topic: str, partition: int, texts: list[bytes], budget: ResponseBudget
) -> tuple[int, int]:
    """How many of ``texts`` a short budget lets out, and the bytes reserved for them."""
    envelope = serialize.fetch_envelope_bytes(topic, partition)
    sizes = [len(text) + 1 for text in texts]
    count = budget.reserve_prefix(sizes, envelope)
    if count:
        return count, envelope + sum(sizes[:count])
    # The budget is spent: what a small answer holds still goes out, unreserved.
    count = prefix_within(sizes, envelope, DIRECT_BYTES)
    if not count:
        raise budget.refuse()
    return count, 0


def fetch_limits(request: web.Request, budget: ResponseBudget | None = None) -> FetchLimits:
    """The fetch's limits from its query; ``max_bytes`` no more than ``budget`` has room for.

    Never less than a small answer, which needs no budget
    (:mod:`minimq.server.response_budget`), so that reading goes on, in small
    answers, while slow readers hold the budget.
    """
    max_bytes = inputs.query_int(request, "max_bytes", 1024 * 1024, 1, 64 * 1024 * 1024)
    if budget is not None:
        max_bytes = min(max_bytes, max(budget.room, DIRECT_BYTES))
    return FetchLimits(
        max_records=inputs.query_int(request, "limit", 100, 1, inputs.MAX_FETCH_RECORDS),
        max_bytes=max_bytes,
        wait_ms=inputs.query_int(request, "wait_ms", 0, 0, inputs.MAX_WAIT_MS),
    )


@routes.post("/produce")
async def legacy_produce(request: web.Request) -> web.Response:
    """The original contract: ``{"topic": ..., "message": ...}`` → 201."""
    ctx = context(request)
    key = _header_idempotency_key(request)
    payload = await produce_message(ctx.broker, await ctx.json_body(request), key)
    return json_response(payload, status=201)


async def produce_message(
    broker: Broker, body: dict[str, Any], raw_key: str | None = None
) -> dict[str, Any]:
    """``POST /produce`` once the body is parsed; shared with the produce lane."""
    topic = inputs.topic_name(inputs.field(body, "topic", str, required=True) or "")
    if "message" not in body:
        raise InvalidRequest("'message' is required")
    # As in _produce_records: tuple.__new__ skips the NamedTuple's keyword __new__.
    record = tuple.__new__(ProduceRecord, (orjson.dumps(body["message"]), None, (), None, None))
    position = (await broker.produce(topic, [record], idempotency_key(raw_key)))[0]
    return {"topic": topic, "partition": position.partition, "offset": position.offset}


# allow_head=False: a read that moves a position must never answer HEAD, which
# would move it and throw the record away (aiohttp adds HEAD to GET routes).
def _consumer_group(request: web.Request) -> str:
    """The implicit group of the original ``/consume``: the consumer id."""
    return inputs.group_name(_required_query(request, "consumer_id"), "consumer_id")


@routes.get("/consume", allow_head=False)
@coordinated(_consumer_group)
async def legacy_consume(request: web.Request) -> web.Response:
    """The original contract: the next message for ``consumer_id``, or 204."""
    topic = inputs.topic_name(_required_query(request, "topic"))
    consumer = _consumer_group(request)
    consumed = await context(request).broker.groups.consume(topic, consumer)
    if consumed is None:
        return web.Response(status=204)
    return json_response(
        {
            **value_rule.message_fields(consumed.record.value),
            "offset": consumed.record.offset,
            "partition": consumed.partition,
        }
    )


def _required_query(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None:
        raise InvalidRequest(f"query parameter {name!r} is required")
    return value
