"""Handlers for consumer groups: group fetch, commit, heartbeat, leave, describe, reset."""

from __future__ import annotations

from typing import cast

from aiohttp import web

from minimq.core import CommitOffset, ResetPolicy, StartPosition
from minimq.errors import InvalidRequest
from minimq.server import inputs, serialize
from minimq.server.context import context, json_response
from minimq.server.topic_routes import fetch_limits

routes = web.RouteTableDef()

_MAX_OFFSET = 2**62


def _group(request: web.Request) -> str:
    return inputs.group_name(request.match_info["group"])


def _member(value: str | None) -> str | None:
    return inputs.group_name(value, "member_id") if value is not None else None


@routes.get("/v1/groups/{group}/topics/{topic}/records")
async def group_fetch(request: web.Request) -> web.Response:
    group = _group(request)
    topic = inputs.topic_name(request.match_info["topic"])
    member = _member(request.query.get("member_id"))
    limits = fetch_limits(request)
    commit = inputs.query_bool(request, "commit", False)
    reset = inputs.query_choice(request, "auto_offset_reset", ("earliest", "latest"), "earliest")
    result = await context(request).broker.group_fetch(
        group,
        topic,
        member,
        limits,
        commit=commit,
        auto_offset_reset=cast(ResetPolicy, reset),
    )
    return json_response(
        {
            "group": group,
            "topic": topic,
            "member_id": result.member_id,
            "assignment": result.assignment,
            "records": serialize.records(topic, result.records),
            "positions": [
                {"partition": p, "offset": o} for p, o in sorted(result.positions.items())
            ],
        }
    )


@routes.post("/v1/groups/{group}/commit")
async def commit(request: web.Request) -> web.Response:
    group = _group(request)
    body = await context(request).json_body(request)
    inputs.reject_unknown(body, frozenset({"offsets", "member_id"}), "request body")
    _member(inputs.field(body, "member_id", str))
    raw_offsets = inputs.field(body, "offsets", list, required=True) or []
    if not raw_offsets:
        raise InvalidRequest("'offsets' must hold at least one entry")
    offsets = []
    for raw in raw_offsets:
        item = inputs.json_object(raw, "each offset")
        inputs.reject_unknown(item, frozenset({"topic", "partition", "offset"}), "offset")
        offsets.append(
            CommitOffset(
                inputs.topic_name(inputs.field(item, "topic", str, required=True) or ""),
                inputs.int_field(item, "partition", 0, 1023, required=True) or 0,
                inputs.int_field(item, "offset", 0, _MAX_OFFSET, required=True) or 0,
            )
        )
    committed = await context(request).broker.commit(group, offsets)
    return json_response(
        {
            "committed": [
                {"topic": c.topic, "partition": c.partition, "offset": c.offset} for c in committed
            ]
        }
    )


async def _topic_and_member(request: web.Request, member_required: bool) -> tuple[str, str | None]:
    body = await context(request).json_body(request)
    inputs.reject_unknown(body, frozenset({"topic", "member_id"}), "request body")
    topic = inputs.topic_name(inputs.field(body, "topic", str, required=True) or "")
    return topic, _member(inputs.field(body, "member_id", str, required=member_required))


@routes.post("/v1/groups/{group}/heartbeat")
async def heartbeat(request: web.Request) -> web.Response:
    group = _group(request)
    topic, member = await _topic_and_member(request, member_required=False)
    member_id, assignment = context(request).broker.heartbeat(group, topic, member)
    return json_response({"member_id": member_id, "assignment": assignment})


@routes.post("/v1/groups/{group}/leave")
async def leave(request: web.Request) -> web.Response:
    group = _group(request)
    topic, member = await _topic_and_member(request, member_required=True)
    context(request).broker.leave(group, topic, member or "")
    return web.Response(status=204)


@routes.get("/v1/groups")
async def list_groups(request: web.Request) -> web.Response:
    groups = context(request).broker.list_groups()
    return json_response(
        {"groups": [{"group": g.group, "topics": g.topics, "members": g.members} for g in groups]}
    )


@routes.get("/v1/groups/{group}")
async def describe_group(request: web.Request) -> web.Response:
    info = context(request).broker.describe_group(_group(request))
    return json_response(serialize.group_info(info))


@routes.post("/v1/groups/{group}/reset")
async def reset(request: web.Request) -> web.Response:
    group = _group(request)
    body = await context(request).json_body(request)
    inputs.reject_unknown(
        body, frozenset({"topic", "to", "offset", "timestamp", "partition"}), "request body"
    )
    topic = inputs.topic_name(inputs.field(body, "topic", str, required=True) or "")
    target = inputs.field(body, "to", str, required=True)
    start: StartPosition
    if target == "earliest":
        start = StartPosition.earliest()
    elif target == "latest":
        start = StartPosition.latest()
    elif target == "offset":
        start = StartPosition.at_offset(
            inputs.int_field(body, "offset", 0, _MAX_OFFSET, required=True) or 0
        )
    elif target == "timestamp":
        start = StartPosition.at_timestamp(
            inputs.int_field(body, "timestamp", 0, _MAX_OFFSET, required=True) or 0
        )
    else:
        raise InvalidRequest("'to' must be earliest, latest, offset or timestamp")
    partition = inputs.int_field(body, "partition", 0, 1023)
    info = await context(request).broker.reset_group(group, topic, start, partition)
    return json_response(serialize.group_info(info))


@routes.delete("/v1/groups/{group}")
async def delete_group(request: web.Request) -> web.Response:
    await context(request).broker.delete_group(_group(request))
    return web.Response(status=204)
