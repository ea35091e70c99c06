"""The consumer-group APIs: coordinator lookup, the classic protocol, offsets, group listings.

Each handler decodes, makes one call on the Kafka face of the group
coordinator (``broker.groups.kafka``, :mod:`minimq.core.groups.kafka_protocol`)
and encodes. The state machine, generations, fencing and the offsets store
are the coordinator's; what is here is Kafka's shape of them:

=================  =====  ==========================================================
API                key    versions, and what the wire adds
=================  =====  ==========================================================
FindCoordinator    10     0-2: the gateway holding the group's ownership lease (this
                          one over the data directory) (key_type 0); there is no
                          transaction coordinator (key_type 1)
JoinGroup          11     0-5: v0 has no rebalance timeout (the session timeout is it)
SyncGroup          14     0-3
Heartbeat          12     0-3
LeaveGroup         13     0-3: v0-2 name one member, v3 a list with per-member errors
OffsetCommit       8      2-7: retention_time (v2-4) is ignored (commits are kept
                          until the group or topic is deleted); per-partition errors
OffsetFetch        9      1-5: v2+ null topics means every committed partition
DescribeGroups     15     0-4: members with their metadata and assignment bytes
ListGroups         16     0-2
=================  =====  ==========================================================

Over a backend several gateways share, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit and DescribeGroups reaching a gateway that does not own the group are answered
NOT_COORDINATOR (16), so the client finds the coordinator again; so is an OffsetCommit whose
gateway lost the group's lease while it was checked. OffsetFetch and ListGroups read what
every gateway shares (the committed offsets), so any gateway answers them.

Errors the coordinator raises go to the top-level error code (OffsetCommit has
none: there they go on every partition); per-item errors it returns go on
their item. Codes come from :func:`~minimq.kafka.errors.error_code_for`.
"""

from __future__ import annotations

import datetime
import zlib
from typing import Any, Final

from kio.schema.errors import ErrorCode

from minimq.core.groups.kafka_errors import MemberIdRequired
from minimq.core.groups.kafka_protocol import OffsetCommitEntry
from minimq.core.storage_seam import GatewayAddress
from minimq.errors import BrokerUnavailable, MemberFenced, MiniMQError, NotCoordinator, StorageError
from minimq.kafka.context import RequestContext
from minimq.kafka.errors import error_code_for
from minimq.kafka.registry import ApiHandler, api

GROUP_KEY_TYPE: Final = 0
NO_THROTTLE: Final = datetime.timedelta(0)
# DescribeGroups v3+: MiniMQ has no ACLs to report (Kafka's "not requested" value).
NO_AUTHORIZED_OPERATIONS: Final = -2147483648


def _timeout_ms(value: datetime.timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _remote_node_id(owner: GatewayAddress) -> int:
    """A node id for another gateway, stable for its process and never this broker's own.

    Every gateway's Metadata names itself with the same node id; a client told that a
    coordinator elsewhere has that id too would take it for the broker it already knows.
    """
    return 1 + zlib.crc32(owner.holder_id.encode()) % (2**31 - 2)


async def _coordinate(ctx: RequestContext, group: str) -> None:
    """Refuse (NOT_COORDINATOR) a group request that reached a gateway not owning the group."""
    try:
        owner = await ctx.broker.groups.ownership.remote_owner(group)
    except StorageError as exc:
        # Who owns it cannot be read now: COORDINATOR_NOT_AVAILABLE, which clients retry.
        raise BrokerUnavailable(f"the owner of group {group!r} is unknown: {exc.message}") from None
    if owner is not None:
        raise NotCoordinator(
            f"group {group!r} is coordinated by the broker at {owner.kafka_host}:"
            f"{owner.kafka_port}; find the coordinator again"
        )


def _group_error(ctx: RequestContext, group: str, exc: MiniMQError) -> ErrorCode:
    """``exc``'s code; NOT_COORDINATOR when it was fenced because the lease moved away."""
    if isinstance(exc, MemberFenced) and not ctx.broker.groups.ownership.holds(group):
        return ErrorCode.not_coordinator
    return error_code_for(exc)


def _coordinator_answer(ctx: RequestContext, code: ErrorCode, message: str | None) -> Any:
    return ctx.response(
        throttle_time=NO_THROTTLE,
        error_code=code,
        error_message=message,
        node_id=-1,
        host="",
        port=-1,
    )


@api(10, 0, 2)
async def find_coordinator(request: Any, ctx: RequestContext) -> Any:
    if getattr(request, "key_type", GROUP_KEY_TYPE) != GROUP_KEY_TYPE:
        message = "MiniMQ has no transactions: there is no transaction coordinator"
        return ctx.response(
            throttle_time=NO_THROTTLE,
            error_code=ErrorCode.invalid_request,
            error_message=message,
            node_id=-1,
            host="",
            port=-1,
        )
    try:
        owner = await ctx.broker.groups.ownership.remote_owner(request.key)
    except StorageError as exc:
        return _coordinator_answer(ctx, ErrorCode.coordinator_not_available, exc.message)
    if owner is None:
        host, port = ctx.advertised
        node_id = ctx.settings.node_id
    elif owner.kafka_port:
        host, port, node_id = owner.kafka_host, owner.kafka_port, _remote_node_id(owner)
    else:
        message = f"the coordinator of group {request.key!r} has no Kafka listener"
        return _coordinator_answer(ctx, ErrorCode.coordinator_not_available, message)
    return ctx.response(
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        error_message=None,
        node_id=node_id,
        host=host,
        port=port,
    )


@api(11, 0, 5)
async def join_group(request: Any, ctx: RequestContext) -> Any:
    session_timeout_ms = _timeout_ms(request.session_timeout)
    # v0 has no rebalance timeout: the session timeout is both, as in Kafka.
    rebalance = getattr(request, "rebalance_timeout", request.session_timeout)
    try:
        await _coordinate(ctx, request.group_id)
        result = await ctx.broker.groups.kafka.join(
            request.group_id,
            request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            client_id=ctx.client_id or "",
            client_host=f"/{ctx.client_host}",
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=_timeout_ms(rebalance),
            protocol_type=request.protocol_type,
            protocols=[(p.name, p.metadata) for p in request.protocols],
            api_version=ctx.api_version,
        )
    except MemberIdRequired as exc:
        # KIP-394: the member sends its JoinGroup again with the id it is given here.
        return _join_error(ctx, ErrorCode.member_id_required, exc.member_id)
    except MiniMQError as exc:
        return _join_error(ctx, _group_error(ctx, request.group_id, exc), request.member_id)
    return ctx.response(
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        generation_id=result.generation,
        protocol_name=result.protocol_name,
        leader=result.leader,
        member_id=result.member_id,
        members=[
            ctx.make(
                "JoinGroupResponseMember",
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                metadata=m.metadata,
            )
            for m in result.members
        ],
    )


def _join_error(ctx: RequestContext, code: ErrorCode, member_id: str) -> Any:
    return ctx.response(
        throttle_time=NO_THROTTLE,
        error_code=code,
        generation_id=-1,
        protocol_name="",
        leader="",
        member_id=member_id,
        members=[],
    )


@api(14, 0, 3)
async def sync_group(request: Any, ctx: RequestContext) -> Any:
    await _coordinate(ctx, request.group_id)
    result = await ctx.broker.groups.kafka.sync(
        request.group_id,
        request.member_id,
        request.generation_id,
        [(a.member_id, a.assignment) for a in request.assignments],
        group_instance_id=getattr(request, "group_instance_id", None),
    )
    return ctx.response(
        throttle_time=NO_THROTTLE, error_code=ErrorCode.none, assignment=result.assignment
    )


@api(12, 0, 3)
async def heartbeat(request: Any, ctx: RequestContext) -> Any:
    await _coordinate(ctx, request.group_id)
    ctx.broker.groups.kafka.heartbeat(
        request.group_id,
        request.member_id,
        request.generation_id,
        group_instance_id=getattr(request, "group_instance_id", None),
    )
    return ctx.response(throttle_time=NO_THROTTLE, error_code=ErrorCode.none)


@api(13, 0, 3)
async def leave_group(request: Any, ctx: RequestContext) -> Any:
    await _coordinate(ctx, request.group_id)
    members = getattr(request, "members", None)
    if members is None:
        # v0-2: one member, whose outcome is the response's error code.
        (left,) = ctx.broker.groups.kafka.leave(request.group_id, [(request.member_id, None)])
        code = ErrorCode.none if left.error is None else error_code_for(left.error)
        return ctx.response(throttle_time=NO_THROTTLE, error_code=code)
    results = ctx.broker.groups.kafka.leave(
        request.group_id, [(m.member_id, m.group_instance_id) for m in members]
    )
    return ctx.response(
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        members=[
            ctx.make(
                "MemberResponse",
                member_id=r.member_id,
                group_instance_id=r.group_instance_id,
                error_code=ErrorCode.none if r.error is None else error_code_for(r.error),
            )
            for r in results
        ],
    )


@api(8, 2, 7)
async def offset_commit(request: Any, ctx: RequestContext) -> Any:
    entries = [
        OffsetCommitEntry(topic.name, p.partition_index, p.committed_offset, p.committed_metadata)
        for topic in request.topics
        for p in topic.partitions
    ]
    try:
        await _coordinate(ctx, request.group_id)
        results = await ctx.broker.groups.kafka.commit_offsets(
            request.group_id,
            request.member_id,
            request.generation_id_or_member_epoch,
            entries,
            group_instance_id=getattr(request, "group_instance_id", None),
        )
        codes = [ErrorCode.none if r.error is None else error_code_for(r.error) for r in results]
    except StorageError:
        # Nothing was stored. Retriable, so the client commits again (Kafka answers
        # this when its offsets log cannot be written).
        codes = [ErrorCode.coordinator_not_available] * len(entries)
    except MiniMQError as exc:
        codes = [_group_error(ctx, request.group_id, exc)] * len(entries)
    by_topic: dict[str, list[Any]] = {}
    for entry, code in zip(entries, codes, strict=True):
        by_topic.setdefault(entry.topic, []).append(
            ctx.make(
                "OffsetCommitResponsePartition", partition_index=entry.partition, error_code=code
            )
        )
    return ctx.response(
        throttle_time=NO_THROTTLE,
        topics=[
            ctx.make("OffsetCommitResponseTopic", name=name, partitions=partitions)
            for name, partitions in by_topic.items()
        ],
    )


@api(9, 1, 5)
async def offset_fetch(request: Any, ctx: RequestContext) -> Any:
    wanted = (
        None
        if request.topics is None
        else [(t.name, p) for t in request.topics for p in t.partition_indexes]
    )
    try:
        found = await ctx.broker.groups.kafka.fetch_offsets(request.group_id, wanted)
    except MiniMQError as exc:
        if wanted is None or ctx.api_version >= 2:
            raise  # answered with the top-level error code
        # v1 has no top-level error code: the error goes on every partition asked for.
        code = error_code_for(exc)
        return _offsets_response(ctx, [(t, p, -1, "", code) for t, p in wanted])
    return _offsets_response(
        ctx, [(o.topic, o.partition, o.offset, o.metadata, ErrorCode.none) for o in found]
    )


def _offsets_response(ctx: RequestContext, rows: list[tuple[str, int, int, str, ErrorCode]]) -> Any:
    by_topic: dict[str, list[Any]] = {}
    for topic, partition, offset, metadata, code in rows:
        by_topic.setdefault(topic, []).append(
            ctx.make(
                "OffsetFetchResponsePartition",
                partition_index=partition,
                committed_offset=offset,
                committed_leader_epoch=-1,
                metadata=metadata,
                error_code=code,
            )
        )
    return ctx.response(
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        topics=[
            ctx.make("OffsetFetchResponseTopic", name=name, partitions=partitions)
            for name, partitions in by_topic.items()
        ],
    )


@api(15, 0, 4)
async def describe_groups(request: Any, ctx: RequestContext) -> Any:
    return ctx.response(
        throttle_time=NO_THROTTLE,
        groups=[await _described(ctx, name) for name in request.groups],
    )


async def _described(ctx: RequestContext, name: str) -> Any:
    try:
        await _coordinate(ctx, name)
        group = await ctx.broker.groups.kafka.describe(name)
    except MiniMQError as exc:
        return ctx.make(
            "DescribedGroup",
            error_code=error_code_for(exc),
            group_id=name,
            group_state="",
            protocol_type="",
            protocol_data="",
            members=[],
            authorized_operations=NO_AUTHORIZED_OPERATIONS,
        )
    return ctx.make(
        "DescribedGroup",
        error_code=ErrorCode.none,
        group_id=group.group,
        group_state=group.state,
        protocol_type=group.protocol_type,
        protocol_data=group.protocol,
        members=[
            ctx.make(
                "DescribedGroupMember",
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                member_metadata=m.metadata,
                member_assignment=m.assignment,
            )
            for m in group.members
        ],
        authorized_operations=NO_AUTHORIZED_OPERATIONS,
    )


@api(16, 0, 2)
async def list_groups(request: Any, ctx: RequestContext) -> Any:
    return ctx.response(
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        groups=[
            ctx.make("ListedGroup", group_id=g.group, protocol_type=g.protocol_type)
            for g in await ctx.broker.groups.kafka.list_groups()
        ],
    )


HANDLERS: tuple[ApiHandler, ...] = (
    find_coordinator,
    join_group,
    sync_group,
    heartbeat,
    leave_group,
    offset_commit,
    offset_fetch,
    describe_groups,
    list_groups,
)
