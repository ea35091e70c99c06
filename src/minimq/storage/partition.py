"""One partition's log: ordered segments, the group-committing writer, roll and retention.

Writing.  ``append`` encodes its batch on the caller's task and queues it; a
single writer task per partition takes *everything queued so far* as one
group, assigns consecutive offsets, and writes the group with one ``pwrite``
(one per segment if the group crosses a roll) in a worker thread.  Under
``fsync=always`` the same thread call fsyncs before any append of the group is
acknowledged, so N concurrent producers pay for one fsync, not N.  Under
``interval:<ms>`` appends are acknowledged after the write and a timer fsyncs
at most ``interval_ms`` later; under ``never`` only rolls and ``close`` fsync.
``append_batches`` queues Kafka clients' frames the same way, already
encoded: it marks each as a client's batch (``partitionLeaderEpoch``
:data:`~minimq.recordbatch.frames.CLIENT_BATCH_EPOCH`, where ``append``'s carry
:data:`~minimq.recordbatch.frames.OWN_BATCH_EPOCH`), the writer overwrites its
base offset, and the frames of one call go into the same group at
consecutive offsets.

Raw reads.  ``read_raw`` serves stored frames as they are (one ``pread`` per
segment touched, memoryviews of its buffer), starting with the frame that
holds the offset, for the Kafka fetch path; ``read`` decodes records
(decompressing compressed frames) for HTTP, SSE and the UI.

Without an fsync in the append, a group of at most :data:`INLINE_WRITE_BYTES`
is written on the event-loop thread itself: a small ``pwrite`` into the page
cache costs microseconds, while handing it to a worker thread and back costs
two thread wake-ups, measured at ~130 µs per one-record request on a 2-core
VM (one-connection round trip 311 → 184 µs, fsync=never).  Bigger groups
still go to the worker thread, so a large batch never stalls the loop.

Failure.  If a write or fsync raises, every append of the group fails
(``StorageFull`` for ENOSPC/EDQUOT, ``LogFailed`` otherwise), the log file is
truncated back to the last published byte, and the log is *poisoned*: every
later append raises ``LogFailed`` until the data directory is reopened and
recovered.  An fsync is never retried: after a failed fsync the kernel may
have dropped the dirty pages, so a retry that "succeeds" proves nothing.

One exception keeps a full disk from needing a restart: a ``StorageFull``
append under ``fsync=always``.  There every published byte was made durable
by an fsync that succeeded *before* it was published, so only unpublished
bytes are in doubt; the next append first truncates the log and its indexes
back to the published state and fsyncs the log, and only if that succeeds is
the log writable again (a still-full disk then fails that append with
``StorageFull`` once more).  Under ``interval`` and ``never`` published bytes
may not be durable yet, so those logs stay poisoned until reopened.

Roll.  Before an append that would overfill the active segment (or once it
is older than ``segment_ms``) the writer fsyncs that segment and its
indexes, creates the next segment's three files, fsyncs the directory, and
only then seals the old one and makes the new one active.  Creating the files
is the step that fails for transient reasons (EMFILE, or ENOSPC for a new
inode or directory block), and it changes nothing stored: ``Segment.create``
removes whatever it made, the old segment stays active with its index files
open, and the appends of the group from that point on fail (``StorageFull``
or a plain ``StorageError``, never ``LogFailed``) without poisoning the log,
so a later append retries the roll.  A failed fsync in either other step
poisons the log as above.  Because the old segment was fsynced before the new
files exist, a crash at any point leaves at most an empty last segment, which
recovery accepts.

Descriptors.  Segments hold no descriptors of their own; they lease them
from the data directory's :class:`~minimq.storage.descriptors.DescriptorCache`
(see there).  When the active log's descriptor cannot be reopened (EMFILE:
the process is out of descriptors), nothing has been written: the appends of
the group fail with ``STORAGE_ERROR`` and the log stays writable, as for a
roll whose files cannot be created.  Under ``interval:<ms>`` the active log
stays leased from its first unsynced write until the interval fsync.

Concurrency contract.  All public methods run on the event-loop thread.
``bounds``, ``read``, ``read_raw`` and ``offset_for_timestamp`` are
coroutines for the seam's sake but never suspend (the pread of a read is
short and runs inline, as before): they only look at published state
(segment list, each segment's published ``size``), which the loop thread
updates after a write returned; they never block on the writer.  After each
published write the log calls ``on_stored`` (the log store's append
listeners), so waiters wake only for records a read can return.
Blocking file work runs in the default executor (or inline, for the small
unsynced writes above), serialized by ``_io_lock`` (writer groups, rolls,
interval fsyncs, retention and close).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from minimq.core.records import NewRecord, Record
from minimq.core.storage_seam import LogBounds
from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import (
    CorruptLog,
    InvalidRequest,
    LogFailed,
    OffsetOutOfRange,
    StorageError,
    StorageFull,
)
from minimq.recordbatch.frames import (
    CLIENT_BATCH_EPOCH_BYTES,
    LEADER_EPOCH,
    BatchHeader,
    encode_batch,
    parse_header,
)
from minimq.storage.descriptors import DescriptorCache
from minimq.storage.files import TMP_SUFFIX, fsync_dir, storage_error
from minimq.storage.limits import DEFAULT_MAX_OPEN_SEGMENT_FILES
from minimq.storage.segment import LOG_SUFFIX, Segment, SegmentFileUnavailable

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_SEGMENT_FILE = re.compile(r"(\d{20})\.(log|index|timeindex)")
_BASE_OFFSET_BYTES = 8
# The largest group written on the event loop when no fsync is due (see the docstring).
INLINE_WRITE_BYTES = 64 * 1024


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _PendingAppend:
    frame: bytearray
    record_count: int
    future: asyncio.Future[int]
    base_offset: int = field(default=-1)


class _LogUnchanged(Exception):
    """File work that failed before it changed anything; the log is writable as it was."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(error.message)
        self.error = error


class _RollNotStarted(_LogUnchanged):
    """The next segment's files could not be created (or the old one not reopened to sync)."""


class DiskPartitionLog:
    """A partition stored as segment files in its own directory (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        segments: list[Segment],
        config: TopicConfig,
        fsync: FsyncPolicy,
        files: DescriptorCache,
    ) -> None:
        self.directory = directory
        self._files = files
        self._segments = segments
        self._bases = [segment.base_offset for segment in segments]
        self._size_bytes = sum(segment.size for segment in segments)
        self.config = config
        self.fsync = fsync
        self._queue: list[_PendingAppend] = []
        self._writer: asyncio.Task[None] | None = None
        self._io_lock = asyncio.Lock()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._failure: StorageError | None = None
        self._recoverable = False  # the failure is a StorageFull write under fsync=always
        self._closed = False
        # Told (topic, partition bound in by the log store) after each stored append.
        self.on_stored: Callable[[], None] = _nobody

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        directory: Path,
        config: TopicConfig,
        fsync: FsyncPolicy,
        *,
        clean: bool,
        files: DescriptorCache | None = None,
    ) -> DiskPartitionLog:
        """Open (blocking) and recover the partition in ``directory``.

        ``files`` is the data directory's descriptor cache (a cache of the
        default size of its own when None, for tools and tests).

        Passes: (1) delete leftover ``.tmp`` files and index files without a
        log; (2) load sealed segments from their index (rebuilding a missing
        or inconsistent one, ``CorruptLog`` on any bad frame); (3) load the
        last segment the same way after a clean shutdown, otherwise re-verify
        all of it and truncate a torn tail; (4) check that segments are
        contiguous.  An empty directory gets a first segment at offset 0.
        """
        files = files or DescriptorCache(DEFAULT_MAX_OPEN_SEGMENT_FILES)
        bases = _clean_directory(directory)
        segments: list[Segment] = []
        try:
            for number, base in enumerate(bases):
                active = number == len(bases) - 1
                segments.append(
                    Segment.load(
                        directory, base, files, active=active, recover=active and not clean
                    )
                )
            for previous, current in itertools.pairwise(segments):
                if previous.next_offset != current.base_offset:
                    raise CorruptLog(
                        f"{previous.log_path}: ends at offset {previous.next_offset} but the "
                        f"next segment starts at {current.base_offset}; refusing to open"
                    )
            if not segments:
                segments.append(Segment.create(directory, 0, files))
                fsync_dir(directory)
        except BaseException:
            for segment in segments:
                segment.close()
            raise
        return cls(directory, segments, config, fsync, files)

    # ----------------------------------------------------------------- state

    @property
    def start_offset(self) -> int:
        return self._segments[0].base_offset

    @property
    def end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    async def bounds(self) -> LogBounds:
        return LogBounds(
            self._segments[0].base_offset, self._segments[-1].next_offset, self._size_bytes
        )

    @property
    def failed(self) -> bool:
        return self._failure is not None

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    # ----------------------------------------------------------------- reading

    async def read(self, offset: int, max_records: int, max_bytes: int) -> list[Record]:
        start, end = self.start_offset, self.end_offset
        if not start <= offset <= end:
            raise OffsetOutOfRange(f"offset {offset} is outside the log's range [{start}, {end}]")
        out: list[Record] = []
        if offset == end or max_records <= 0:
            return out
        budget = max_bytes
        first = bisect_right(self._bases, offset) - 1
        for segment in self._segments[first:]:
            if offset >= segment.next_offset:
                continue
            records, budget = segment.read(
                offset, max_records - len(out), budget, at_least_one=not out
            )
            out.extend(records)
            if len(out) >= max_records or budget <= 0 or not records:
                break
            offset = out[-1].offset + 1
        return out

    async def read_raw(self, offset: int, max_bytes: int) -> tuple[list[memoryview | bytes], int]:
        """Whole stored batches from the one holding ``offset``, verbatim (see ``PartitionLog``)."""
        start, end = self.start_offset, self.end_offset
        if not start <= offset <= end:
            raise OffsetOutOfRange(f"offset {offset} is outside the log's range [{start}, {end}]")
        out: list[memoryview | bytes] = []
        budget = max_bytes
        first = bisect_right(self._bases, offset) - 1
        for segment in self._segments[first:]:
            if offset >= segment.next_offset:
                continue
            chunk, offset = segment.read_raw(offset, budget, at_least_one=not out)
            if chunk is None:
                break
            out.append(chunk)
            budget -= len(chunk)
            if budget <= 0:
                break
        return out, offset

    def recent_producer_batches(self, scan_bytes: int) -> Callable[[], list[BatchHeader]]:
        """A blocking scan of the last ``scan_bytes`` (whole segments) for producer batches.

        Returns the work to run in a worker thread: it reads only what is
        published now (a snapshot of the segments), so appends may go on.
        Yields the headers of batches with a producer id, oldest first.
        """
        chosen: list[Segment] = []
        covered = 0
        for segment in reversed(self._segments):
            if covered >= scan_bytes:
                break
            chosen.append(segment)
            covered += segment.size
        chosen.reverse()

        def scan() -> list[BatchHeader]:
            return [
                header
                for segment in chosen
                for header in segment.batch_headers()
                if header.producer_id >= 0
            ]

        return scan

    async def offset_for_timestamp(self, timestamp: int) -> int:
        for segment in list(self._segments):
            found = segment.offset_for_timestamp(timestamp)
            if found is not None:
                return found
        return self.end_offset

    # ----------------------------------------------------------------- appending

    async def append(self, records: Sequence[NewRecord], dedup_id: str | None = None) -> int:
        if self._failure is not None and not self._recoverable:
            raise LogFailed(f"{self.directory}: an earlier write failed ({self._failure.message})")
        if self._closed:
            raise LogFailed(f"{self.directory}: the log is closed")
        if not records:
            raise InvalidRequest("a batch needs at least one record")
        frame = encode_batch(0, records, now_ms())
        loop = asyncio.get_running_loop()
        pending = _PendingAppend(frame, len(records), loop.create_future())
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queued())
        return await pending.future

    async def append_batches(self, frames: Sequence[bytearray]) -> int:
        """Append client batches verbatim; return the first one's base offset once durable.

        Each frame is one checked RecordBatch v2 (``minimq.core.record_batches``).
        Its ``partitionLeaderEpoch`` is set here to mark it a client's (its
        values then read back as ``ClientBytes``) and the writer overwrites its
        base offset, nothing else (both lie outside the CRC).  The frames get
        consecutive offsets in one group (the writer takes them together).
        """
        if self._failure is not None and not self._recoverable:
            raise LogFailed(f"{self.directory}: an earlier write failed ({self._failure.message})")
        if self._closed:
            raise LogFailed(f"{self.directory}: the log is closed")
        if not frames:
            raise InvalidRequest("a produce needs at least one batch")
        for frame in frames:
            frame[LEADER_EPOCH] = CLIENT_BATCH_EPOCH_BYTES
        loop = asyncio.get_running_loop()
        pending = [
            _PendingAppend(frame, _record_count(frame), loop.create_future()) for frame in frames
        ]
        self._queue.extend(pending)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queued())
        if len(pending) == 1:
            return await pending[0].future
        results = await asyncio.gather(*(p.future for p in pending), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return pending[0].base_offset

    async def _write_queued(self) -> None:
        async with self._io_lock:
            while self._queue:
                group, self._queue = self._queue, []
                if self._failure is not None and not await self._recover():
                    error = self._failure if self._recoverable else None
                    _fail(group, error or LogFailed(f"{self.directory}: an earlier write failed"))
                    continue
                try:
                    await self._write_group(group)
                except StorageError as exc:
                    self._failure = exc
                    log.error(
                        "%s: append failed, log refuses writes until reopened: %s",
                        self.directory,
                        exc.message,
                    )
                    _fail(group, exc)
                except Exception as exc:
                    # A bug, not an I/O error: still never leave an append waiting.
                    log.exception(
                        "%s: writer failed, log refuses writes until reopened", self.directory
                    )
                    self._failure = LogFailed(f"{self.directory}: writer failed: {exc!r}")
                    _fail(group, self._failure)
                except BaseException:
                    self._failure = LogFailed(f"{self.directory}: writer cancelled")
                    _fail(group + self._queue, self._failure)
                    self._queue = []
                    raise

    async def _write_group(self, group: list[_PendingAppend]) -> None:
        offset = self.end_offset
        for pending in group:
            pending.frame[:_BASE_OFFSET_BYTES] = offset.to_bytes(_BASE_OFFSET_BYTES, "big")
            pending.base_offset = offset
            offset += pending.record_count
        now = now_ms()
        sync = self.fsync.mode == "always"
        first = 0
        while first < len(group):
            segment = self._segments[-1]
            if self._roll_due(segment, len(group[first].frame), now):
                try:
                    segment = await self._roll()
                except _RollNotStarted as failed:
                    # Nothing of group[first:] was written and the log is as it was:
                    # refuse those appends, but leave the log writable so that a later
                    # append retries the roll once the cause (EMFILE, ENOSPC) is gone.
                    log.warning("%s: %s", self.directory, failed.error.message)
                    _fail(group[first:], failed.error)
                    break
            last = first + 1
            size = segment.size + len(group[first].frame)
            while last < len(group) and size + len(group[last].frame) <= self.config.segment_bytes:
                size += len(group[last].frame)
                last += 1
            chunk = group[first:last]
            planned = segment.plan([pending.frame for pending in chunk])
            write = functools.partial(
                segment.write, planned, sync=sync, hold_until_sync=self.fsync.mode == "interval"
            )
            what = f"append to {segment.log_path}"
            try:
                if not sync and len(planned.data) <= INLINE_WRITE_BYTES:
                    self._inline(write, what)
                else:
                    await self._blocking(write, what)
            except StorageFull:
                self._recoverable = sync
                raise
            except _LogUnchanged as unchanged:
                # As for a roll that could not start: refuse, stay writable.
                log.warning("%s: %s", self.directory, unchanged.error.message)
                _fail(group[first:], unchanged.error)
                break
            segment.publish(planned, now)
            self._size_bytes += planned.end - planned.start
            for pending in chunk:
                if not pending.future.done():
                    pending.future.set_result(pending.base_offset)
            # Readable now: wake long-polls and streams (also of appends whose caller left).
            self.on_stored()
            first = last
        if self.fsync.mode == "interval" and self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                self.fsync.interval_ms / 1000, self._start_interval_flush
            )

    async def _recover(self) -> bool:
        """After a recoverable ``StorageFull``: back to the published state (holds ``_io_lock``).

        True when the log may be written again (see "Failure" in the module docstring).
        """
        if not self._recoverable:
            return False
        segment = self._segments[-1]
        # _recoverable stays set while this awaits: an append arriving meanwhile
        # queues for this writer (full disk: STORAGE_FULL), not LOG_FAILED at once.
        try:
            await self._blocking(segment.discard_unpublished, f"recover {segment.log_path}")
        except _LogUnchanged as unchanged:
            # Not even reopened: nothing was truncated yet, so trying again later is safe.
            self._failure = unchanged.error
            self._recoverable = True
            log.error("%s: cannot recover yet: %s", self.directory, unchanged.error.message)
            return False
        except StorageError as exc:
            # Still full: the truncation may not be durable yet, but every published
            # byte is, so trying again later stays safe.  Anything else poisons the log.
            self._failure = exc
            self._recoverable = isinstance(exc, StorageFull)
            log.error("%s: cannot recover after a full disk: %s", self.directory, exc.message)
            return False
        except BaseException:
            self._recoverable = False
            raise
        log.info("%s: unpublished bytes discarded after a full disk; retrying", self.directory)
        self._recoverable = False
        self._failure = None
        return True

    def _roll_due(self, segment: Segment, frame_size: int, now: int) -> bool:
        if segment.size == 0:
            return False
        if segment.size + frame_size > self.config.segment_bytes:
            return True
        age_limit = self.config.segment_ms
        return (
            age_limit is not None
            and segment.first_append_ms is not None
            and now - segment.first_append_ms >= age_limit
        )

    async def _roll(self) -> Segment:
        """Seal the active segment and start a new one at the end offset (holds ``_io_lock``).

        Three steps, in this order so that a sealed segment is durable before
        its successor exists (see "Roll" in the module docstring):

        1. fsync the active segment and its indexes: a failure poisons the log;
        2. create the new segment's files: a failure raises :class:`_RollNotStarted`
           and leaves the log exactly as it was, still writable;
        3. fsync the directory, then seal the old segment: a failure poisons the log.
        """
        old = self._segments[-1]
        what = f"roll {old.log_path}"
        try:
            try:
                await self._blocking(old.sync, what)
            except _LogUnchanged as unchanged:
                raise _RollNotStarted(unchanged.error) from unchanged
            try:
                new = await asyncio.get_running_loop().run_in_executor(
                    None, Segment.create, self.directory, old.next_offset, self._files
                )
            except OSError as exc:
                error = storage_error(exc, f"{self.directory}: {what}", log_failed=False)
                raise _RollNotStarted(error) from exc

            def publish_new() -> None:
                fsync_dir(self.directory)
                old.seal()

            try:
                await self._blocking(publish_new, what)
            except BaseException:
                new.close()
                raise
        except StorageError as exc:
            self._failure = exc
            raise
        self._segments.append(new)
        self._bases.append(new.base_offset)
        return new

    async def _blocking(self, work: Callable[[], _T], what: str) -> _T:
        """Run blocking file work in a worker thread, mapping ``OSError`` to a storage error.

        A descriptor that could not be opened raises :class:`_LogUnchanged`
        (nothing was done); callers that cannot use that say so by catching it.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(None, work)
        except SegmentFileUnavailable as exc:
            error = storage_error(exc, f"{self.directory}: {what}", log_failed=False)
            raise _LogUnchanged(error) from exc
        except OSError as exc:
            raise storage_error(exc, f"{self.directory}: {what}") from exc

    def _inline(self, work: Callable[[], _T], what: str) -> _T:
        """Run short file work right here, mapping ``OSError`` as :meth:`_blocking` does."""
        try:
            return work()
        except SegmentFileUnavailable as exc:
            error = storage_error(exc, f"{self.directory}: {what}", log_failed=False)
            raise _LogUnchanged(error) from exc
        except OSError as exc:
            raise storage_error(exc, f"{self.directory}: {what}") from exc

    def _start_interval_flush(self) -> None:
        self._flush_timer = None
        task = asyncio.get_running_loop().create_task(self._interval_flush())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _interval_flush(self) -> None:
        async with self._io_lock:
            if self._failure is not None or self._closed:
                return
            active = self._segments[-1]
            try:
                await self._blocking(active.sync, f"fsync {active.log_path}")
            except _LogUnchanged as unchanged:
                # No fsync ran (a descriptor could not be reopened), so running it
                # later is not the retry of a failed fsync.
                log.warning("%s: interval fsync postponed: %s", self.directory, unchanged.error)
                if self._flush_timer is None and not self._closed:
                    self._flush_timer = asyncio.get_running_loop().call_later(
                        self.fsync.interval_ms / 1000, self._start_interval_flush
                    )
            except StorageError as exc:
                self._failure = exc
                log.error(
                    "%s: interval fsync failed, log refuses writes until reopened: %s",
                    self.directory,
                    exc.message,
                )

    # ----------------------------------------------------------------- retention

    async def apply_retention(self, now: int) -> int:
        """Delete the oldest whole segments past the time and size limits; return how many.

        Time: a prefix of segments whose newest record is older than
        ``retention_ms``; an expired active segment is rolled first so it can
        go too.  Size: the oldest sealed segments while the rest still holds
        at least ``retention_bytes``.  The start offset moves to the first
        remaining segment.
        """
        retention_ms, retention_bytes = self.config.retention_ms, self.config.retention_bytes
        if retention_ms is None and retention_bytes is None:
            return 0
        async with self._io_lock:
            if self._failure is not None or self._closed:
                return 0
            victims = 0
            if retention_ms is not None:
                cutoff = now - retention_ms
                while (
                    victims < len(self._segments)
                    and self._segments[victims].size > 0
                    and self._segments[victims].max_timestamp < cutoff
                ):
                    victims += 1
                if victims == len(self._segments):
                    try:
                        await self._roll()
                    except _RollNotStarted as failed:
                        # The active segment must stay (a log always has one): delete the
                        # others now, and this one at a later check once it can roll.
                        log.warning(
                            "%s: expired active segment kept: %s",
                            self.directory,
                            failed.error.message,
                        )
                        victims -= 1
            if retention_bytes is not None:
                remaining = self._size_bytes - sum(s.size for s in self._segments[:victims])
                while (
                    victims < len(self._segments) - 1
                    and remaining - self._segments[victims].size >= retention_bytes
                ):
                    remaining -= self._segments[victims].size
                    victims += 1
            if victims == 0:
                return 0
            doomed = self._segments[:victims]
            del self._segments[:victims]
            del self._bases[:victims]
            self._size_bytes -= sum(segment.size for segment in doomed)

            def delete_files() -> None:
                for segment in doomed:
                    segment.delete()
                fsync_dir(self.directory)

            await self._blocking(delete_files, "delete expired segments")
            log.info(
                "%s: retention deleted %d segment(s); start offset now %d",
                self.directory,
                victims,
                self.start_offset,
            )
            return victims

    # ----------------------------------------------------------------- closing

    async def close(self) -> None:
        """Finish queued appends, fsync (unless the log failed) and close the files."""
        self._closed = True
        if self._writer is not None:
            await self._writer
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        for task in list(self._background):
            await task
        async with self._io_lock:
            failed = self._failure is not None

            def sync_and_close() -> None:
                try:
                    if not failed:
                        self._segments[-1].sync()
                        for segment in self._segments:
                            segment.persist_index()
                finally:
                    self.close_files()

            try:
                await self._blocking(sync_and_close, "close")
            except _LogUnchanged as unchanged:
                # Not fsynced: the next open must verify the active segment again.
                self._failure = unchanged.error
                log.error("%s: closed without a final fsync: %s", self.directory, unchanged.error)

    def close_files(self) -> None:
        """Close every segment without fsync (blocking; for aborted opens and after ``close``)."""
        for segment in self._segments:
            segment.close()


def _nobody() -> None:
    """The ``on_stored`` of a log no store listens to (tools, tests)."""


def _record_count(frame: bytearray) -> int:
    """How many offsets a frame takes: ``lastOffsetDelta + 1`` (checked equal to its count)."""
    return parse_header(frame).last_offset_delta + 1


def _fail(group: list[_PendingAppend], error: StorageError) -> None:
    """Fail every still-waiting append, each with its own copy of ``error``."""
    for pending in group:
        if not pending.future.done():
            pending.future.set_exception(type(error)(error.message))


def _clean_directory(directory: Path) -> list[int]:
    """Remove temporary and orphaned index files; return the segments' base offsets, sorted."""
    logs: set[int] = set()
    indexes: list[tuple[int, Path]] = []
    for path in directory.iterdir():
        if path.name.endswith(TMP_SUFFIX):
            log.warning("%s: removing leftover temporary file", path)
            path.unlink()
            continue
        match = _SEGMENT_FILE.fullmatch(path.name)
        if match is None:
            continue
        base = int(match.group(1))
        if match.group(2) == LOG_SUFFIX[1:]:
            logs.add(base)
        else:
            indexes.append((base, path))
    for base, path in indexes:
        if base not in logs:
            log.warning("%s: removing index without a segment", path)
            path.unlink()
    with contextlib.suppress(OSError):
        if indexes or logs:
            fsync_dir(directory)
    return sorted(logs)
