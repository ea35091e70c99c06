"""One topic partition as one JetStream stream: offset = stream sequence - 1.

Appending: atomic batch publish.  A produce call of at most 1,000 records is ONE atomic batch
(headers ``Nats-Batch-Id``, ``Nats-Batch-Sequence``, ``Nats-Batch-Commit``): the stream stores
all of it or none, at consecutive sequences, whatever other gateways write to the partition at
the same time, because the server applies a committed batch under the stream's lock in one
piece.  No read-before-write is needed, so concurrent produce calls on one partition do not
contend: measured 61,800 msgs/s sequential and 69,000-82,000 with 4 concurrent batches, where
``Nats-Expected-Last-Sequence`` per message reached ≈20,000 pipelined and ≈750/s with two
writers racing (each loser retries on the new tail), and pipelined conditional publishes can even
reorder a producer's records (reference, "More traps seen").

A call of more than 1,000 records (the server's batch limit, err 10199) is split into batches of
1,000; batch k+1 carries ``Nats-Expected-Last-Sequence`` = the last sequence of batch k, so it
lands directly after it or not at all.  This process's other appends to the partition wait
while such a call runs (``append_gate``), so within one gateway the call stays contiguous.  If
another *gateway* writes the partition between two of its batches, the next batch is refused:
the call fails with ``StorageError`` after its first batches were stored (their offsets are in
the error's ``details``), rather than store records at offsets other than the ones it reports.
Atomicity of a call is therefore: all-or-nothing and contiguous up to 1,000 records; beyond,
each 1,000 are all-or-nothing and the call is contiguous unless another gateway writes the same
partition meanwhile, in which case it fails part-way and says how far it got.

Unknown outcomes.  The first message of every batch carries ``Nats-Msg-Id`` (one per batch,
not per record, to keep the server's duplicate table small).  When a commit's answer is lost
(timeout, reconnect, leader change) the whole batch is sent again under a new batch id and the
same message id; if the first attempt was stored, the server refuses the repeat (10201,
duplicate message id) and the stored batch is found by scanning back from the stream's tail
for that id.  A stored batch is therefore never stored twice.

Retries through another gateway.  An append given a ``dedup_id`` (the core derives one from an
HTTP ``Idempotency-Key``, the partition and its records) uses it instead of a random call id,
so batch k of the call has message id ``<dedup_id>.<k>`` on every gateway.  A client that sends
the request again through another gateway (its first died) then meets the same refusal, the
stored batch is found, and the original offsets are returned: nothing is stored again, as long
as the first attempt is inside the stream's duplicate window (120 s, shorter with a shorter
retention) and within the last 200,000 messages of the partition (the scan's bound).

Visibility.  A committed batch is stored all or nothing, but *applied* message by message: the
leader's stream info reported ``last_seq`` 341 in the middle of a 1,000-message batch
(measured).  So the end offset this backend hands out is always a call boundary: a sequence
whose message is a batch commit, or, for one inside a batch, the sequence before that batch
(from its ``Nats-Batch-Sequence``); notifications count only commit messages; and a read hands
out records past the end offset this process knows only up to the last whole call in the
answer (the boundary of its last message, by the same rule).  No reader sees part of a call.

Reading: batch direct get, which any replica may answer (``direct_get``).  A follower can lag
the leader right after a write, so an answer is trusted only as far as it goes: when it holds
nothing although this process knows the end offset (from its own acks, from notifications and
from the leader's stream info) lies beyond the requested offset, the read is repeated and then
served by the stream leader (``STREAM.MSG.GET``): a read below the end offset never returns
``[]``.  A read asks no stream info while the answering replica holds a whole call from the
offset on; only an answer with nothing readable at or past the known end offset needs the
leader's bounds, to tell the end from "out of range" and from a lagging replica.  An answer
from a replica that lags may hold fewer records than are stored (after one quick follow-up
request, sent only when the end marker's ``Nats-Num-Pending`` says the answer reached that
replica's tail and the tail is inside a call or below the known end), never fewer than one: a
consumer reading on from where it got to sees every record, in order.  End offsets are
monotonic per process: :meth:`JetStreamPartitionLog.bounds` never reports less than any end
offset this process has seen (an isolated old leader may, for ~14 s, still answer stream info
with stale figures; reference, "Network partition").
"""

from __future__ import annotations

import asyncio
import functools
import re
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import nats.errors
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from minimq.core.records import NewRecord, Record
from minimq.core.storage_seam import LogBounds
from minimq.errors import (
    MessageTooLarge,
    OffsetOutOfRange,
    StorageError,
    TopicNotFound,
)
from minimq.jetstream.append_gate import AppendGate
from minimq.jetstream.connection import (
    ERR_BATCH_DUPLICATE_MSG_ID,
    ERR_STREAM_NOT_FOUND,
    ERR_WRONG_LAST_SEQUENCE,
    FAILOVER_BUDGET_S,
    ApiError,
    JetStreamConnection,
    Unavailable,
    is_transient,
    retry_failover,
)
from minimq.jetstream.direct_get import MSG_ID, BatchAnswer, DirectReader, StoredMessage
from minimq.jetstream.message_format import batch_kind, message_size, to_message, to_record
from minimq.recordbatch.frames import (
    CLIENT_BATCH_EPOCH_BYTES,
    LEADER_EPOCH,
    MAX_BATCH_BYTES,
    decode_records,
    encode_batch,
    parse_header,
    read_cost,
)

_BASE_OFFSET: Final = struct.Struct(">q")
_DEDUP_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_BATCH_MESSAGES: Final = 1000  # the server's atomic batch limit
BATCH_ID: Final = "Nats-Batch-Id"
BATCH_SEQUENCE: Final = "Nats-Batch-Sequence"
BATCH_COMMIT: Final = "Nats-Batch-Commit"
EXPECTED_LAST_SEQUENCE: Final = "Nats-Expected-Last-Sequence"
# The most the batch headers add to one message (the first of a continuation batch carries all).
_BATCH_HEADERS_SIZE: Final = message_size(
    {
        BATCH_ID: "0" * 32,
        BATCH_SEQUENCE: str(MAX_BATCH_MESSAGES),
        BATCH_COMMIT: "1",
        MSG_ID: "0" * 64 + "." + "9" * 10,
        EXPECTED_LAST_SEQUENCE: str(2**64),
    },
    b"",
) - message_size({}, b"")
# Errors after which nothing of the batch was stored and the same batch may simply go again:
# incomplete (a message of it was lost, e.g. at a leader change), too many batches in flight.
_RETRY_BATCH_ERRORS: Final = frozenset({10176, 10210})
# How far back from the tail a lost-answer batch is looked for (its id is in the dedup window).
_LOCATE_SCAN_MESSAGES: Final = 200_000
# Lagging-follower retries of a direct get before the leader serves the read.
_STALE_READ_RETRIES: Final = 3
# A read asks for at most this many records per request (the direct get's own limit).
MAX_READ_RECORDS: Final = 1000
# Per-record allowance for NATS and MiniMQ headers when asking the server for max_bytes.
_READ_HEADER_ALLOWANCE: Final = 320


@dataclass(slots=True)
class StreamState:
    """What this process knows of one partition stream, shared by all handles on it."""

    end: int = 0
    start: int = 0
    gate: AppendGate = field(default_factory=AppendGate)

    def saw_end(self, end: int) -> None:
        self.end = max(self.end, end)

    def saw_start(self, start: int) -> None:
        self.start = max(self.start, start)


@dataclass(frozen=True, slots=True)
class Location:
    """Where one partition of one topic incarnation lives."""

    stream: str
    subject: str  # records of a call but its last
    commit_subject: str  # the last record of a call: the one that is republished
    topic_id: str  # the incarnation


class StreamStates:
    """Every :class:`StreamState` of this process, by stream name."""

    def __init__(self) -> None:
        self._states: dict[str, StreamState] = {}

    def get(self, stream: str) -> StreamState:
        state = self._states.get(stream)
        if state is None:
            state = self._states[stream] = StreamState()
        return state

    def saw_end(self, stream: str, end: int) -> None:
        self.get(stream).saw_end(end)

    def forget(self, stream: str) -> None:
        self._states.pop(stream, None)


class PartialAppend(StorageError):
    """A call of more than 1,000 records was cut short by another gateway's write.

    ``details`` says which of its records were stored (the first ones, contiguously).
    """


@dataclass(slots=True)
class PartitionContext:
    """What every partition handle of one storage shares."""

    connection: JetStreamConnection
    reader: DirectReader
    states: StreamStates
    locate: Callable[[str, int], Awaitable[Location]]
    # (topic, topic_id): a stream of that incarnation is gone; the next lookup asks the leader.
    forget_topic: Callable[[str, str], None]
    stored: Callable[[str, int], None]  # wakes this process's listeners after an own append


class JetStreamPartitionLog:
    """A handle on one partition.  Resolves its stream on first use and keeps it: a handle
    outliving its topic incarnation raises ``TopicNotFound`` (a new handle finds the new one).

    Safe for concurrent use from one event loop.
    """

    def __init__(self, context: PartitionContext, topic: str, partition: int) -> None:
        self._context = context
        self.topic = topic
        self.partition = partition
        self._location: Location | None = None

    async def _where(self) -> Location:
        if self._location is None:
            self._location = await self._context.locate(self.topic, self.partition)
        return self._location

    def _gone(self) -> TopicNotFound:
        if self._location is not None:
            self._context.forget_topic(self.topic, self._location.topic_id)
        return TopicNotFound(f"topic {self.topic!r} does not exist (any more)")

    async def _stream_exists(self, stream: str) -> bool:
        """False only when JetStream says the stream is gone; an unanswered question is True
        (during a failover "no responders" means "no leader yet", so the caller retries)."""
        try:
            await self._context.connection.api(f"STREAM.INFO.{stream}")
        except ApiError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                return False
            if not is_transient(exc):
                raise
        except Exception as exc:
            if not is_transient(exc):
                raise
        return True

    # -- bounds ----------------------------------------------------------------------------

    async def bounds(self) -> LogBounds:
        where = await self._where()
        info = await self._stream_info(where.stream)
        stream_state = info.get("state") or {}
        first = int(stream_state.get("first_seq") or 0)
        last = int(stream_state.get("last_seq") or 0)
        state = self._context.states.get(where.stream)
        if last > state.end:
            state.saw_end(await self._call_boundary(where.stream, last))
        state.saw_start(max(first - 1, 0))
        return LogBounds(min(state.start, state.end), state.end, int(stream_state.get("bytes", 0)))

    async def _call_boundary(self, stream: str, last: int) -> int:
        """The end offset of the last *whole* call stored at or below sequence ``last``.

        A committed atomic batch is applied message by message: the leader's stream info
        showed ``last_seq`` 341 while a batch of 1,000 was being applied (measured).  A
        message that is not its batch's commit says how far into its batch it is, so the
        calls complete up to here end ``Nats-Batch-Sequence`` messages before it.
        """

        async def last_message() -> StoredMessage | None:
            messages = await self._context.reader.batch(stream, last, 1, None)
            if messages and messages[0].sequence == last:
                return messages[0]
            return await self._leader_get(stream, last)

        message = await retry_failover(last_message, f"reading the end of {self.topic}")
        if message is None:
            return last  # expired meanwhile: nothing left to be partial
        return batch_boundary(message)

    async def _leader_get(self, stream: str, sequence: int) -> StoredMessage | None:
        try:
            return await self._context.reader.leader_get(stream, sequence=sequence)
        except ApiError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                raise self._gone() from None
            raise

    async def _stream_info(self, stream: str) -> dict[str, Any]:
        async def info() -> dict[str, Any]:
            try:
                return await self._context.connection.api(f"STREAM.INFO.{stream}")
            except ApiError as exc:
                if exc.err_code == ERR_STREAM_NOT_FOUND:
                    raise self._gone() from None
                raise

        return await retry_failover(info, f"reading the bounds of {self.topic}/{self.partition}")

    # -- append ----------------------------------------------------------------------------

    async def append(self, records: Sequence[NewRecord], dedup_id: str | None = None) -> int:
        if dedup_id is not None and not _DEDUP_ID.fullmatch(dedup_id):
            raise ValueError(f"a dedup id is 1-64 characters of A-Z a-z 0-9 _ -, not {dedup_id!r}")
        now_ms = time.time_ns() // 1_000_000
        return await self._append(
            [to_message(record, now_ms, from_client=False) for record in records], dedup_id
        )

    async def append_batches(self, frames: Sequence[bytearray]) -> int:
        messages: list[tuple[dict[str, str], bytes]] = []
        for frame in frames:
            # The client's mark, outside the CRC: decoding then yields ClientBytes values.
            frame[LEADER_EPOCH] = CLIENT_BATCH_EPOCH_BYTES
            codec = parse_header(frame).codec
            for record in decode_records(frame, 0, 2**31 - 1):
                new = NewRecord(record.key, record.value, record.headers, record.timestamp)
                messages.append(to_message(new, 0, from_client=True, codec=codec))
        return await self._append(messages)

    async def _append(
        self, messages: list[tuple[dict[str, str], bytes]], dedup_id: str | None = None
    ) -> int:
        if not messages:
            raise StorageError("an append needs at least one record")
        limit = self._context.connection.max_payload
        for headers, payload in messages:
            size = message_size(headers, payload) + _BATCH_HEADERS_SIZE
            if size > limit:
                raise MessageTooLarge(
                    f"a record of {size} bytes with its headers exceeds the NATS cluster's "
                    f"max_payload of {limit} bytes"
                )
        where = await self._where()
        state = self._context.states.get(where.stream)
        step = MAX_BATCH_MESSAGES
        chunks = [messages[i : i + step] for i in range(0, len(messages), step)]
        # A caller's dedup id names the call for every gateway: a repeat may be stored already.
        call_id = dedup_id or uuid.uuid4().hex
        named = dedup_id is not None
        if len(chunks) == 1:
            async with state.gate.shared():
                first, last = await self._commit(where, chunks[0], f"{call_id}.0", None, named)
        else:
            async with state.gate.exclusive():
                first, last = await self._commit(where, chunks[0], f"{call_id}.0", None, named)
                stored = len(chunks[0])
                for number, chunk in enumerate(chunks[1:], start=1):
                    try:
                        _, last = await self._commit(
                            where, chunk, f"{call_id}.{number}", last, named
                        )
                    except PartialAppend as exc:
                        exc.details = {
                            "stored_records": stored,
                            "base_offset": first - 1,
                            "records": len(messages),
                        }
                        state.saw_end(last)
                        self._context.stored(self.topic, self.partition)
                        raise
                    stored += len(chunk)
        state.saw_end(last)
        self._context.stored(self.topic, self.partition)
        return first - 1

    async def _commit(
        self,
        where: Location,
        chunk: list[tuple[dict[str, str], bytes]],
        msg_id: str,
        expected_last: int | None,
        named: bool = False,
    ) -> tuple[int, int]:
        """Publish one atomic batch; its first and last stream sequence once acknowledged.

        ``named``: ``msg_id`` comes from the caller's dedup id, so this batch may have been
        stored before (through any gateway); a refused expected last sequence then means
        "look for it" first, as after a lost answer.
        """
        client = self._context.connection.client
        deadline = time.monotonic() + FAILOVER_BUDGET_S
        wait = 0.05
        maybe_stored = named
        count = len(chunk)
        while True:
            batch_id = uuid.uuid4().hex
            try:
                ack: dict[str, Any] = {}
                for number, (headers, payload) in enumerate(chunk, start=1):
                    fields = dict(headers)
                    fields[BATCH_ID] = batch_id
                    fields[BATCH_SEQUENCE] = str(number)
                    if number == 1:
                        fields[MSG_ID] = msg_id
                        if expected_last is not None:
                            fields[EXPECTED_LAST_SEQUENCE] = str(expected_last)
                    if number == count:
                        fields[BATCH_COMMIT] = "1"
                        ack = await self._context.connection.publish_acked(
                            where.commit_subject, payload, fields
                        )
                    else:
                        await client.publish(where.subject, payload, headers=fields)
                last = int(ack["seq"])
                return last - int(ack.get("count", count)) + 1, last
            except ApiError as exc:
                if exc.err_code == ERR_BATCH_DUPLICATE_MSG_ID or (
                    maybe_stored and exc.err_code == ERR_WRONG_LAST_SEQUENCE
                ):
                    found = await self._locate_batch(where.stream, msg_id, count)
                    if found is not None:
                        return found
                if exc.err_code == ERR_WRONG_LAST_SEQUENCE and expected_last is not None:
                    raise PartialAppend(
                        f"another writer appended to {self.topic}/{self.partition} in the "
                        "middle of a produce call of more than 1,000 records; the rest of the "
                        "call was not stored"
                    ) from None
                if exc.err_code in _RETRY_BATCH_ERRORS or is_transient(exc):
                    error: Exception = exc
                elif exc.err_code == ERR_STREAM_NOT_FOUND:
                    raise self._gone() from None
                else:
                    raise StorageError(
                        f"JetStream refused an append to {self.topic}/{self.partition}: "
                        f"{exc.description} (err_code {exc.err_code})"
                    ) from None
            except nats.errors.NoRespondersError as exc:
                if not await self._stream_exists(where.stream):
                    raise self._gone() from None
                error = exc
            except Exception as exc:
                if not is_transient(exc):
                    raise
                error = exc
                maybe_stored = True
            if time.monotonic() + wait > deadline:
                raise StorageError(
                    f"the NATS cluster did not acknowledge an append to "
                    f"{self.topic}/{self.partition} within {FAILOVER_BUDGET_S:.0f} s "
                    f"({type(error).__name__}: {error})"
                ) from error
            await asyncio.sleep(wait)
            wait = min(wait * 2, 1.0)

    async def _locate_batch(self, stream: str, msg_id: str, count: int) -> tuple[int, int] | None:
        """First and last sequence of the stored batch whose first message has ``msg_id``."""
        info = await self._stream_info(stream)
        last = int((info.get("state") or {}).get("last_seq") or 0)
        first_kept = int((info.get("state") or {}).get("first_seq") or 1)
        scanned = 0
        upper = last
        while upper >= first_kept and scanned < _LOCATE_SCAN_MESSAGES:
            lower = max(first_kept, upper - MAX_READ_RECORDS + 1)
            messages = await retry_failover(
                functools.partial(self._complete_batch, stream, lower, upper - lower + 1),
                f"looking up a retried append to {self.topic}/{self.partition}",
            )
            for message in messages:
                if message.headers.get(MSG_ID) == msg_id:
                    return message.sequence, message.sequence + count - 1
            scanned += upper - lower + 1
            upper = lower - 1
        return None

    async def _complete_batch(self, stream: str, first: int, count: int) -> list[StoredMessage]:
        messages = await self._context.reader.batch(stream, first, count, None)
        if len(messages) < count:
            raise Unavailable("the answering replica lags the leader")
        return messages

    # -- read ------------------------------------------------------------------------------

    async def read(self, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        return [record for record, _ in await self._read(offset, max_records, max_bytes)]

    async def _read(
        self, offset: int, max_records: int, max_bytes: int
    ) -> list[tuple[Record, tuple[bool, int]]]:
        """Records with the kind of frame they came in (``batch_kind``), at most the limits.

        No stream info is asked while the answering replica holds whole calls from
        ``offset`` on: the answer itself says how far they go (``_readable_end``).  Only an
        answer with nothing readable at or past the end offset this process knows needs
        the leader's bounds, to tell "at the end" from "out of range" and from a lagging
        replica.
        """
        where = await self._where()
        state = self._context.states.get(where.stream)
        if max_records <= 0:
            return []
        if offset < state.start:
            await self._check_range(offset)  # below a start seen before: raises
        want = max(1, min(max_records, MAX_READ_RECORDS))
        server_bytes = max_bytes + _READ_HEADER_ALLOWANCE * want
        run = await self._replica_run(where.stream, state, offset, want, server_bytes)
        readable = _readable_end(run, state.end)
        if readable <= offset:
            # Nothing whole at or past the end this process knows: ask the leader where the
            # end is (at it: nothing to read; past it: out of range; below: read on).
            if await self._check_range(offset) == offset:
                return []
            if not run:  # below the end, yet this replica has nothing: it lags
                run = await self._lagging_replica_read(where.stream, offset, want, server_bytes)
            readable = _readable_end(run, state.end)
        out: list[tuple[Record, tuple[bool, int]]] = []
        spent = 0
        for message in run:
            if message.sequence > readable:
                break  # past the last whole call: part of a call still being applied
            record = to_record(message.sequence - 1, message.headers, message.payload)
            spent += read_cost(record)
            if out and spent > max_bytes:
                break
            out.append((record, batch_kind(message.headers)))
            if len(out) >= max_records:
                break
        # A call boundary stored by a replica: stored by a quorum, so an end to go by.
        state.saw_end(readable)
        return out

    async def _check_range(self, offset: int) -> int:
        """The leader's end offset; ``OffsetOutOfRange`` when ``offset`` is outside the bounds."""
        bounds = await self.bounds()
        if offset > bounds.end or offset < bounds.start:
            raise OffsetOutOfRange(
                f"offset {offset} is outside [{bounds.start}, {bounds.end}] of "
                f"{self.topic}/{self.partition}"
            )
        return bounds.end

    async def _replica_run(
        self, stream: str, state: StreamState, offset: int, want: int, server_bytes: int
    ) -> list[StoredMessage]:
        """The contiguous messages from ``offset`` on that one replica answers (maybe none)."""
        answer = await self._direct(stream, offset + 1, want, server_bytes)
        messages = answer.messages
        if messages and messages[0].sequence > offset + 1:
            # The records at ``offset`` expired (max_age / max_bytes) since the bounds were read.
            state.saw_start(messages[0].sequence - 1)
            raise OffsetOutOfRange(
                f"offset {offset} is below the start {messages[0].sequence - 1} of "
                f"{self.topic}/{self.partition}"
            )
        run = _contiguous(messages, offset + 1)
        if run and len(run) < want and _replica_catching_up(answer, run, state.end, server_bytes):
            # The replica holds less than asked, and not for max_bytes: it is applying a call
            # right now (a batch becomes visible message by message), or it lags what this
            # process knows is stored.  One quick follow-up for the rest.
            await asyncio.sleep(0.002)
            more = await self._direct(stream, run[-1].sequence + 1, want - len(run), server_bytes)
            run.extend(_contiguous(more.messages, run[-1].sequence + 1))
        return run

    async def _direct(self, stream: str, first: int, count: int, max_bytes: int) -> BatchAnswer:
        async def get() -> BatchAnswer:
            try:
                return await self._context.reader.batch_answer(stream, first, count, max_bytes)
            except Unavailable:
                if not await self._stream_exists(stream):
                    raise self._gone() from None
                raise

        return await retry_failover(get, f"reading {self.topic}/{self.partition}")

    async def _lagging_replica_read(
        self, stream: str, offset: int, want: int, max_bytes: int
    ) -> list[StoredMessage]:
        """The replica answered nothing below the end: it lags. Ask again, then the leader."""
        for attempt in range(_STALE_READ_RETRIES):
            await asyncio.sleep(0.002 * (attempt + 1))
            messages = _contiguous(
                (await self._direct(stream, offset + 1, want, max_bytes)).messages, offset + 1
            )
            if messages:
                return messages

        async def from_leader() -> list[StoredMessage]:
            message = await self._leader_get(stream, offset + 1)
            return [] if message is None else [message]

        messages = await retry_failover(from_leader, f"reading {self.topic}/{self.partition}")
        if not messages:
            # Not even the leader has it: the record expired in between (or the end offset this
            # process saw came from an incarnation deleted meanwhile).
            await self.bounds()
            raise OffsetOutOfRange(
                f"offset {offset} of {self.topic}/{self.partition} is no longer stored"
            )
        return messages

    async def read_raw(self, offset: int, max_bytes: int) -> tuple[list[memoryview | bytes], int]:
        records = await self._read(offset, MAX_READ_RECORDS, max_bytes)
        if not records:
            return [], offset
        frames: list[memoryview | bytes] = []  # bytearray frames, wrapped without a copy
        run: list[Record] = []
        run_kind = records[0][1]
        for record, kind in records:
            if run and kind != run_kind:
                frames.append(memoryview(_frame(run, run_kind)))
                run = []
            run_kind = kind
            run.append(record)
        frames.append(memoryview(_frame(run, run_kind)))
        return frames, records[-1][0].offset + 1

    # -- timestamps and producer state -------------------------------------------------------

    async def offset_for_timestamp(self, timestamp: int) -> int:
        """First offset with a record timestamp >= ``timestamp``; a scan from the log start.

        Record timestamps are the producers', not the stream's storage times, and need not be
        monotonic, so no index helps; the scan reads in pages of 1,000 (Kafka ListOffsets and
        the HTTP time seek are rare operations).
        """
        bounds = await self.bounds()
        offset = bounds.start
        while offset < bounds.end:
            try:
                page = await self.read(offset, MAX_READ_RECORDS, 64 * 1024 * 1024)
            except OffsetOutOfRange:
                offset = (await self.bounds()).start
                continue
            if not page:
                break
            for record in page:
                if record.timestamp >= timestamp:
                    return record.offset
            offset = page[-1].offset + 1
        return (await self.bounds()).end

    def recent_producer_batches(self, scan_bytes: int) -> Callable[[], list[Any]]:
        """Idempotent producers' state is not kept in JetStream: nothing to recover."""
        return list


def _payload_bytes(messages: list[StoredMessage]) -> int:
    return sum(len(message.payload) for message in messages)


def _contiguous(messages: list[StoredMessage], first: int) -> list[StoredMessage]:
    """The messages from sequence ``first`` on up to the first gap."""
    for index, message in enumerate(messages):
        if message.sequence != first + index:
            return messages[:index]
    return messages


def _readable_end(run: list[StoredMessage], known_end: int) -> int:
    """The end offset up to which ``run`` (contiguous, stored) may be handed out.

    Everything below ``known_end`` (a call boundary this process saw) is; past it, only
    whole calls: up to the boundary of the run's last message (``batch_boundary``), which is
    the message itself when it ends a call and the end of the previous call when it is inside
    one.  A run stops at the replica's tail or at the request's limits; either way its last
    whole call is stored (a replica stores only what a quorum agreed on).
    """
    return max(known_end, batch_boundary(run[-1])) if run else known_end


def _replica_catching_up(
    answer: BatchAnswer, run: list[StoredMessage], known_end: int, server_bytes: int
) -> bool:
    """Whether a short ``run`` is worth one quick follow-up request.

    Only when the replica said it holds nothing after it (``Nats-Num-Pending`` 0: not cut by
    ``max_bytes``) and yet it ends inside a call (being applied) or below the end offset this
    process knows (the replica lags).  A run that ends a call at the replica's tail is simply
    everything there is.
    """
    if answer.pending is None:
        if _payload_bytes(run) * 2 >= server_bytes:
            return False
    elif answer.pending > 0:
        return False
    last = run[-1]
    return batch_boundary(last) < last.sequence or last.sequence < known_end


def batch_boundary(message: StoredMessage) -> int:
    """The end offset of the whole calls up to ``message`` (itself included if it ends one)."""
    if message.headers.get(BATCH_COMMIT) == "1" or BATCH_ID not in message.headers:
        return message.sequence
    position = message.headers.get(BATCH_SEQUENCE, "")
    return message.sequence - int(position) if position.isdigit() else message.sequence


def _frame(records: list[Record], kind: tuple[bool, int]) -> bytearray:
    """One RecordBatch v2 frame of consecutive ``records``, marked with their origin.

    Records of a client's compressed batch are compressed again with its codec (frames'
    ``encode_batch`` writes uncompressed frames only): the records are stored decompressed, one
    per message, so this costs CPU at every fetch, but a consumer gets what its producer chose.
    """
    from_client, codec = kind
    if codec:
        builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, MAX_BATCH_BYTES)
        for delta, record in enumerate(records):
            builder.append(delta, record.timestamp, record.key, record.value, list(record.headers))
        frame: bytearray = builder.build()
        _BASE_OFFSET.pack_into(frame, 0, records[0].offset)
    else:
        new = [NewRecord(r.key, r.value, r.headers, r.timestamp) for r in records]
        frame = encode_batch(records[0].offset, new, 0)
    if from_client:
        frame[LEADER_EPOCH] = CLIENT_BATCH_EPOCH_BYTES
    return frame
