"""Handlers for consumer groups: join, group fetch, commit, heartbeat, leave, describe, reset.

Every route naming one group runs on that group's coordinator (``coordinated``: here, or
forwarded to the gateway holding the group's lease). The listing merges what this gateway
knows with the group names of the committed offsets, which every gateway shares.
"""

from __future__ import annotations

from typing import cast

from aiohttp import web

from minimq.core import CommitOffset, GroupMembership, ResetPolicy, StartPosition
from minimq.errors import InvalidRequest
from minimq.server import inputs, serialize
from minimq.server.context import context, json_response
from minimq.server.group_forwarding import coordinated
from minimq.server.response_budget import send_json
from minimq.server.topic_routes import fetch_limits

routes = web.RouteTableDef()

_MAX_OFFSET = 2**62


def _group(request: web.Request) -> str:
    return inputs.group_name(request.match_info["group"])


def _member(value: str | None) -> str | None:
    return inputs.group_name(value, "member_id") if value is not None else None


def _membership(group: str, topic: str, membership: GroupMembership) -> dict[str, object]:
    return {
        "group": group,
        "topic": topic,
        "member_id": membership.member_id,
        "generation": membership.generation,
        "assignment": membership.assignment,
    }


_GENERATION_LIMIT = 2**62


# No HEAD: a group fetch moves the member's positions (and with commit=true the
# committed offsets), so a HEAD would hand records to nobody.
@routes.get("/v1/groups/{group}/topics/{topic}/records", allow_head=False)
@coordinated(_group)
async def group_fetch(request: web.Request) -> web.StreamResponse:
    group = _group(request)
    topic = inputs.topic_name(request.match_info["topic"])
    member = _member(request.query.get("member_id"))
    generation = (
        inputs.query_int(request, "generation", 0, 0, _GENERATION_LIMIT)
        if "generation" in request.query
        else None
    )
    if generation is not None and member is None:
        raise InvalidRequest("'generation' goes with a 'member_id'")
    budget = context(request).responses
    limits = fetch_limits(request, budget)
    commit = inputs.query_bool(request, "commit", False)
    reset = inputs.query_choice(request, "auto_offset_reset", ("earliest", "latest"), "earliest")
    result = await context(request).broker.groups.fetch(
        group,
        topic,
        member,
        limits,
        generation=generation,
        commit=commit,
        auto_offset_reset=cast(ResetPolicy, reset),
        requester_gone=lambda: request.transport is None or request.transport.is_closing(),
    )
    return await send_json(
        request,
        budget,
        {
            "group": group,
            "topic": topic,
            "member_id": result.member_id,
            "generation": result.generation,
            "assignment": result.assignment,
            "records": serialize.records(topic, result.records),
            "positions": [
                {"partition": p, "offset": o} for p, o in sorted(result.positions.items())
            ],
        },
    )


@routes.post("/v1/groups/{group}/commit")
@coordinated(_group)
async def commit(request: web.Request) -> web.Response:
    group = _group(request)
    body = await context(request).json_body(request)
    inputs.reject_unknown(body, frozenset({"offsets", "member_id", "generation"}), "request body")
    member = _member(inputs.field(body, "member_id", str))
    generation = inputs.int_field(body, "generation", 0, _GENERATION_LIMIT)
    if member is not None and generation is None:
        raise InvalidRequest("a member's commit needs its 'generation' (from join or fetch)")
    if generation is not None and member is None:
        raise InvalidRequest("'generation' goes with a 'member_id'")
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
    committed = await context(request).broker.groups.commit(group, offsets, member, generation)
    return json_response(
        {
            "committed": [
                {"topic": c.topic, "partition": c.partition, "offset": c.offset} for c in committed
            ]
        }
    )


_MEMBER_FIELDS = frozenset({"topic", "member_id", "generation"})


@routes.post("/v1/groups/{group}/join")
@coordinated(_group)
async def join(request: web.Request) -> web.Response:
    group = _group(request)
    body = await context(request).json_body(request)
    inputs.reject_unknown(body, frozenset({"topic", "member_id", "assignor"}), "request body")
    topic = inputs.topic_name(inputs.field(body, "topic", str, required=True) or "")
    member = _member(inputs.field(body, "member_id", str))
    assignor = inputs.field(body, "assignor", str)
    membership = await context(request).broker.groups.join(group, topic, member, assignor)
    return json_response(_membership(group, topic, membership))


@routes.post("/v1/groups/{group}/heartbeat")
@coordinated(_group)
async def heartbeat(request: web.Request) -> web.Response:
    group = _group(request)
    body = await context(request).json_body(request)
    inputs.reject_unknown(body, _MEMBER_FIELDS, "request body")
    topic = inputs.topic_name(inputs.field(body, "topic", str, required=True) or "")
    # Required: a heartbeat without a member id would make a member nobody runs.
    member = _member(inputs.field(body, "member_id", str, required=True)) or ""
    generation = inputs.int_field(body, "generation", 0, _GENERATION_LIMIT)
    membership = await context(request).broker.groups.heartbeat(group, topic, member, generation)
    return json_response(_membership(group, topic, membership))


@routes.post("/v1/groups/{group}/leave")
@coordinated(_group)
async def leave(request: web.Request) -> web.Response:
    group = _group(request)
    body = await context(request).json_body(request)
    inputs.reject_unknown(body, _MEMBER_FIELDS, "request body")
    topic = inputs.topic_name(inputs.field(body, "topic", str, required=True) or "")
    member = _member(inputs.field(body, "member_id", str, required=True)) or ""
    context(request).broker.groups.leave(group, topic, member)
    return web.Response(status=204)


@routes.get("/v1/groups")
async def list_groups(request: web.Request) -> web.Response:
    groups = await context(request).broker.groups.list_groups()
    return json_response(
        {
            "groups": [
                {
                    "group": g.group,
                    "topics": g.topics,
                    "members": g.members,
                    "state": g.state,
                    "total_lag": g.total_lag,
                    "protocol_type": g.protocol_type,
                }
                for g in groups
            ]
        }
    )


@routes.get("/v1/groups/{group}")
@coordinated(_group)
async def describe_group(request: web.Request) -> web.Response:
    info = await context(request).broker.groups.describe(_group(request))
    return json_response(serialize.group_info(info))


@routes.post("/v1/groups/{group}/reset")
@coordinated(_group)
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
    info = await context(request).broker.groups.reset(group, topic, start, partition)
    return json_response(serialize.group_info(info))


@routes.delete("/v1/groups/{group}")
@coordinated(_group)
async def delete_group(request: web.Request) -> web.Response:
    await context(request).broker.groups.delete(_group(request))
    return web.Response(status=204)
