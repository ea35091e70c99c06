"""One segment: a ``.log`` file of RecordBatch v2 frames plus its sparse indexes.

Files, named by the segment's base offset zero-padded to 20 digits so ``ls``
sorts them: ``00000000000000001000.log``, ``.index`` and ``.timeindex``.

Invariants:

* frames are contiguous from byte 0; each frame's base offset equals the
  previous frame's last offset + 1, the first one equals the base offset;
* ``size`` is the *published* length: every byte below it is a complete frame
  that was written successfully (and fsynced, under ``fsync=always``); readers
  never look past it, so they never see a half-written batch;
* a sealed segment (every segment but the partition's last) was fsynced,
  together with its indexes, before the next segment was created.

Files.  A segment holds no descriptor of its own: its three files are
:class:`~minimq.storage.descriptors.CachedFile` entries of the data
directory's :class:`~minimq.storage.descriptors.DescriptorCache`, opened on
demand and leased for exactly the duration of each read, write or fsync.
They are opened with ``O_NOFOLLOW``: a segment file replaced by a symbolic
link is refused (``ELOOP``), never followed out of the data directory.

Index files without space.  The index is derived data.  When recovery
rebuilds an index and cannot write it (ENOSPC, EDQUOT), the segment keeps the
index in memory, removes the stale files (so no later open trusts them) and
serves; a full disk must not keep a broker from starting and serving reads.
The files are written again when the segment is sealed or the log is closed,
and otherwise rebuilt at the next open.

Concurrency: the partition's event-loop thread calls ``read``,
``offset_for_timestamp`` and ``publish``; the blocking methods (``create``,
``load``, ``write``, ``sync``, ``seal``, ``delete``) run in a worker thread,
one at a time per partition (the partition's writer lock).  ``write`` only
touches bytes at or past ``size``, which readers never read, and
``os.pread`` on a shared descriptor is safe from any thread; the lease keeps
that descriptor open until the read is done, whichever thread reads.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from minimq.core.records import Record
from minimq.errors import CorruptLog
from minimq.recordbatch.compression import NONE
from minimq.recordbatch.frames import (
    HEADER_READ_BYTES,
    HEADER_SIZE,
    LENGTH_PREFIX,
    MAGIC,
    MAX_BATCH_BYTES,
    BatchHeader,
    crc_matches,
    decode_records,
    decode_records_counting_headers,
    header_is_plausible,
    parse_header,
    read_cost,
)
from minimq.storage.descriptors import CachedFile, DescriptorCache
from minimq.storage.files import pwrite_all, storage_error, write_all
from minimq.storage.index import (
    INDEX_INTERVAL_BYTES,
    OFFSET_ENTRY,
    TIME_ENTRY,
    SegmentIndex,
    write_index_files,
)

log = logging.getLogger(__name__)

LOG_SUFFIX: Final = ".log"
INDEX_SUFFIX: Final = ".index"
TIME_INDEX_SUFFIX: Final = ".timeindex"
FIRST_READ_BYTES: Final = 16 * 1024
READ_AHEAD_BYTES: Final = 256 * 1024
NO_TIMESTAMP: Final = -1
LOG_FLAGS: Final = os.O_RDWR | os.O_NOFOLLOW
INDEX_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
# baseOffset, batchLength, and lastOffsetDelta: what a raw read needs of each header.
_OFFSET_AND_LENGTH: Final = struct.Struct(">qi")
_LAST_OFFSET_DELTA: Final = struct.Struct(">i")
_DELTA_AT: Final = 23
_MAGIC_AT: Final = 16
# Errors that mean "no new space": a rebuilt index is then kept in memory only.
NO_SPACE_ERRNOS: Final = (errno.ENOSPC, errno.EDQUOT)


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


class SegmentFileUnavailable(OSError):
    """A segment file's descriptor could not be (re)opened: nothing was read or written.

    Raised instead of the ``OSError`` of the open (EMFILE, ENFILE, ...), with
    its errno, so that callers can tell "the log is unchanged" from a failed
    write.
    """


class InvalidBatch(Exception):
    """A frame that is torn, structurally wrong or fails its CRC, at ``position``."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"{reason} at byte {position}")
        self.position = position
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SegmentWrite:
    """Frames to append to a segment and the state it will have once they are written."""

    start: int
    data: bytes
    index_entries: tuple[tuple[int, int, int], ...]  # (relative offset, position, prior max ts)
    end: int
    next_offset: int
    max_timestamp: int
    bytes_since_entry: int


class Segment:
    """A segment file with its in-memory index; see the module docstring for invariants."""

    def __init__(
        self, directory: Path, base_offset: int, files: DescriptorCache, log_file: CachedFile
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        name = segment_name(base_offset)
        self.log_path = directory / (name + LOG_SUFFIX)
        self.index_path = directory / (name + INDEX_SUFFIX)
        self.time_index_path = directory / (name + TIME_INDEX_SUFFIX)
        self._files = files
        self._log = log_file
        # The index files appended to: only while active, and only if they are on disk.
        self._index_files: tuple[CachedFile, CachedFile] | None = None
        self._index_on_disk = True  # False: only in memory (it could not be written)
        self._unsynced = False  # a write since the last fsync holds a lease on the log
        self.index = SegmentIndex()
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.first_append_ms: int | None = None  # wall time of the first batch, for age rolls

    # ----------------------------------------------------------------- opening

    @classmethod
    def create(cls, directory: Path, base_offset: int, files: DescriptorCache) -> Segment:
        """A new, empty active segment (blocking; the caller fsyncs the directory).

        If any of its three files cannot be created (EMFILE, ENOSPC, ...), the
        ones already made are closed and removed before the ``OSError``
        propagates: a leftover ``.log`` would make every later attempt fail on
        ``O_EXCL``, so a failed roll could never be retried.
        """
        log_file = files.create(
            directory / (segment_name(base_offset) + LOG_SUFFIX),
            LOG_FLAGS | os.O_CREAT | os.O_EXCL,
            LOG_FLAGS,
        )
        segment = cls(directory, base_offset, files, log_file)
        try:
            segment._open_index_files(truncate=True)
        except BaseException:
            # Best effort: were a file left anyway, it is empty and recovery accepts
            # an empty last segment, so nothing stored is at stake.
            with contextlib.suppress(OSError):
                segment.delete()
            raise
        return segment

    @classmethod
    def load(
        cls,
        directory: Path,
        base_offset: int,
        files: DescriptorCache,
        *,
        active: bool,
        recover: bool,
    ) -> Segment:
        """Open an existing segment (blocking).

        ``recover``: verify every frame's CRC and rebuild the index; for the
        active segment an invalid frame and everything after it is truncated
        (a torn tail), for a sealed one it raises ``CorruptLog``.  Otherwise
        the stored index is used if consistent, else rebuilt the same way.
        The log's descriptor goes back to the cache afterwards, so opening
        every segment of a data directory never holds more than the cache's
        capacity.
        """
        log_file = files.register(directory / (segment_name(base_offset) + LOG_SUFFIX), LOG_FLAGS)
        segment = cls(directory, base_offset, files, log_file)
        try:
            with files.lease(log_file) as fd:
                segment.size = os.fstat(fd).st_size
                stored = (
                    None
                    if recover
                    else SegmentIndex.load(
                        segment.index_path, segment.time_index_path, segment.size
                    )
                )
                if stored is None:
                    segment._rebuild(fd, may_truncate=active)
                else:
                    segment.index = stored
                    segment._scan_tail(fd)
            if active:
                segment._open_index_files(truncate=False)
        except BaseException:
            segment.close()
            raise
        return segment

    def _open_index_files(self, *, truncate: bool) -> None:
        """Make the index files appendable: created (and emptied) now, or opened at first use."""
        if not self._index_on_disk:
            return
        paths = (self.index_path, self.time_index_path)
        if truncate:
            offsets = self._files.create(paths[0], INDEX_FLAGS | os.O_TRUNC, INDEX_FLAGS)
            try:
                times = self._files.create(paths[1], INDEX_FLAGS | os.O_TRUNC, INDEX_FLAGS)
            except BaseException:
                self._files.discard(offsets)
                raise
        else:
            offsets, times = (self._files.register(path, INDEX_FLAGS) for path in paths)
        self._index_files = (offsets, times)

    def _acquire(self, file: CachedFile) -> int:
        try:
            return self._files.acquire(file)
        except OSError as exc:
            raise SegmentFileUnavailable(exc.errno, exc.strerror, str(file.path)) from exc

    def _acquire_all(self, files: Sequence[CachedFile]) -> list[int]:
        fds: list[int] = []
        try:
            for file in files:
                fds.append(self._acquire(file))
        except BaseException:
            for file in files[: len(fds)]:
                self._files.release(file)
            raise
        return fds

    def _rebuild(self, fd: int, *, may_truncate: bool) -> None:
        """Verify every frame from byte 0, rebuild the index, truncate a torn tail."""
        self.index = SegmentIndex()
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        position = 0
        try:
            for position, header, _frame in self._frames(fd, 0, self.size, verify=True):
                self._account(header, position, index_it=True)
            position = self.size
        except InvalidBatch as invalid:
            if not may_truncate:
                raise CorruptLog(f"{self.log_path}: {invalid}; refusing to open") from None
            position = invalid.position
            log.warning(
                "%s: %s; truncating the torn tail (%d bytes dropped)",
                self.log_path,
                invalid,
                self.size - position,
            )
            os.ftruncate(fd, position)
            os.fsync(fd)
            self.size = position
        self._write_index()
        self._set_first_append_time(fd)

    def _write_index(self) -> None:
        """Replace both index files with the in-memory index; without space, keep it in memory.

        See "Index files without space" in the module docstring.  Other errors propagate.
        """
        try:
            write_index_files(self.index, self.index_path, self.time_index_path)
        except OSError as exc:
            if exc.errno not in NO_SPACE_ERRNOS:
                raise
            for path in (self.index_path, self.time_index_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._index_on_disk = False
            log.error(
                "%s: cannot write the rebuilt index (%s): SERVING FROM AN IN-MEMORY INDEX; it "
                "is written at the next roll or clean shutdown once there is space, else "
                "rebuilt at the next start",
                self.log_path,
                os.strerror(exc.errno or errno.ENOSPC),
            )
            return
        self._index_on_disk = True

    def persist_index(self) -> None:
        """Write the index files if they are only in memory (blocking; a full disk is tolerated)."""
        if not self._index_on_disk:
            self._write_index()

    def _scan_tail(self, fd: int) -> None:
        """Recompute next offset and max timestamp from the last index entry on (headers only)."""
        index = self.index
        start = index.last_position()
        self.max_timestamp = index.prior_max_timestamps[-1] if len(index) else NO_TIMESTAMP
        self.next_offset = self.base_offset + (index.relative_offsets[-1] if len(index) else 0)
        try:
            for position, header, _frame in self._frames(fd, start, self.size, verify=False):
                self._account(header, position, index_it=False)
        except InvalidBatch as invalid:
            raise CorruptLog(f"{self.log_path}: {invalid}; refusing to open") from None
        index.bytes_since_entry = self.size - start
        self._set_first_append_time(fd)

    def _account(self, header: BatchHeader, position: int, *, index_it: bool) -> None:
        if header.base_offset != self.next_offset:
            raise InvalidBatch(
                position, f"batch base offset {header.base_offset} != expected {self.next_offset}"
            )
        if index_it:
            if self.index.bytes_since_entry >= INDEX_INTERVAL_BYTES:
                self.index.add(header.base_offset - self.base_offset, position, self.max_timestamp)
                self.index.bytes_since_entry = 0
            self.index.bytes_since_entry += header.total_size
        self.next_offset = header.next_offset
        self.max_timestamp = max(self.max_timestamp, header.max_timestamp)

    def _set_first_append_time(self, fd: int) -> None:
        # The file records no creation time, so a reloaded segment ages from its
        # first batch's timestamp; producer timestamps in the past can make it
        # roll at its next append (once: the new segment ages from wall time).
        if self.size >= HEADER_SIZE:
            self.first_append_ms = parse_header(os.pread(fd, HEADER_SIZE, 0)).base_timestamp

    # ----------------------------------------------------------------- reading

    def _frames(
        self, fd: int, position: int, end: int, *, verify: bool, first_offset: int | None = None
    ) -> Iterator[tuple[int, BatchHeader, memoryview]]:
        """Frames of the log open as ``fd`` (leased by the caller) from ``position`` to ``end``.

        ``position`` is a frame boundary; the file is read in large chunks.

        With ``first_offset`` every frame's base offset must continue the chain
        from it: the CRC does not cover the base offset, so this is what keeps
        a damaged one from serving records under the wrong offsets.
        """
        expected = first_offset
        buffer = b""
        buffer_start = position
        read_size = FIRST_READ_BYTES
        while position < end:
            if position + HEADER_SIZE > buffer_start + len(buffer):
                if end - position < HEADER_SIZE:
                    raise InvalidBatch(position, "truncated batch header")
                buffer = os.pread(fd, min(end - position, read_size), position)
                buffer_start = position
                read_size = READ_AHEAD_BYTES
                if len(buffer) < HEADER_SIZE:
                    raise InvalidBatch(position, "file shorter than expected")
            header = parse_header(buffer, position - buffer_start)
            if not header_is_plausible(header):
                raise InvalidBatch(position, "malformed batch header")
            if expected is not None:
                if header.base_offset != expected:
                    raise InvalidBatch(
                        position, f"batch base offset {header.base_offset} != expected {expected}"
                    )
                expected = header.next_offset
            total = header.total_size
            if position + total > end:
                raise InvalidBatch(position, "truncated batch")
            if position + total > buffer_start + len(buffer):
                # A batch larger than the buffer: read exactly it (a random read
                # of one record then costs one batch, not a read-ahead window).
                buffer = os.pread(fd, total, position)
                buffer_start = position
                if len(buffer) < total:
                    raise InvalidBatch(position, "file shorter than expected")
            relative = position - buffer_start
            frame = memoryview(buffer)[relative : relative + total]
            if verify and not crc_matches(frame, header):
                raise InvalidBatch(position, "CRC-32C mismatch")
            yield position, header, frame
            position += total

    def read(
        self, offset: int, max_records: int, max_bytes: int, *, at_least_one: bool
    ) -> tuple[list[Record], int]:
        """Records from ``offset`` within this segment, and the ``max_bytes`` budget left.

        With ``at_least_one`` the first record is returned even if it alone
        exceeds ``max_bytes``.
        Every frame served is CRC-checked first; a mismatch raises ``CorruptLog``.
        A file that cannot be opened or read raises ``StorageError``.
        """
        out: list[Record] = []
        budget = max_bytes
        relative, start = self.index.entry_for_offset(offset - self.base_offset)
        first = self.base_offset + relative
        fd = self._lease_for_reading()
        try:
            for position, header, frame in self._frames(
                fd, start, self.size, verify=False, first_offset=first
            ):
                if header.last_offset < offset:
                    continue
                if not crc_matches(frame, header):
                    raise InvalidBatch(position, "CRC-32C mismatch")
                records, headers = decode_records_counting_headers(
                    frame, offset, max_records - len(out)
                )
                # Headers cost more to serve than their bytes (batch.HEADER_READ_BYTES).
                cost = header.total_size + headers * HEADER_READ_BYTES
                if cost <= budget and header.codec == NONE:
                    # The frame is larger than its records' payload, so all of them fit
                    # (not so for a compressed one: its records are counted one by one).
                    out.extend(records)
                    budget -= cost
                else:
                    for record in records:
                        size = read_cost(record)
                        if (out or not at_least_one) and size > budget:
                            return out, 0
                        out.append(record)
                        budget = max(budget - size, 0)
                if len(out) >= max_records or budget <= 0:
                    break
                offset = header.next_offset
        except InvalidBatch as invalid:
            raise CorruptLog(f"{self.log_path}: {invalid}; batch not served") from None
        except OSError as exc:
            raise storage_error(exc, f"read {self.log_path}", log_failed=False) from exc
        finally:
            self._files.release(self._log)
        return out, budget

    def read_raw(
        self, offset: int, max_bytes: int, *, at_least_one: bool
    ) -> tuple[memoryview | None, int]:
        """Whole stored batches from the one holding ``offset``, as one view, and the next offset.

        At most ``max_bytes``, except that with ``at_least_one`` the first batch
        is returned whatever its size.  ``None`` when not even one batch fits.
        The bytes are the stored frames verbatim (no CRC check, no decoding): a
        Kafka client checks them itself.

        One positional read covers the batch holding ``offset`` and the budget
        after it: it starts at the index entry at or before ``offset``, and a
        batch never starts :data:`~minimq.storage.index.INDEX_INTERVAL_BYTES`
        or more after its entry.
        """
        _relative, start = self.index.entry_for_offset(offset - self.base_offset)
        end = self.size
        fd = self._lease_for_reading()
        try:
            size = min(end - start, INDEX_INTERVAL_BYTES + HEADER_SIZE + max(max_bytes, 0))
            buffer = os.pread(fd, size, start)
            position = 0
            while True:  # to the batch holding offset
                base, total = self._raw_header(buffer, position, start, end)
                last = base + _LAST_OFFSET_DELTA.unpack_from(buffer, position + _DELTA_AT)[0]
                if last >= offset:
                    break
                position += total
            if total > max_bytes and not at_least_one:
                return None, offset
            if position + total > len(buffer):
                # A first batch larger than the read: read exactly it, alone.
                view = memoryview(os.pread(fd, total, start + position))
                if len(view) < total:
                    raise InvalidBatch(start + position, "file shorter than expected")
                return view, last + 1
            first = position
            position += total
            next_offset = last + 1
            # Then whole batches while they fit the budget and the buffer.
            while position + HEADER_SIZE <= len(buffer) and start + position < end:
                base, total = self._raw_header(buffer, position, start, end)
                if position + total > len(buffer) or position + total - first > max_bytes:
                    break
                next_offset = (
                    base + _LAST_OFFSET_DELTA.unpack_from(buffer, position + _DELTA_AT)[0] + 1
                )
                position += total
            return memoryview(buffer)[first:position], next_offset
        except InvalidBatch as invalid:
            raise CorruptLog(f"{self.log_path}: {invalid}; batch not served") from None
        except OSError as exc:
            raise storage_error(exc, f"read {self.log_path}", log_failed=False) from exc
        finally:
            self._files.release(self._log)

    def _raw_header(self, buffer: bytes, position: int, start: int, end: int) -> tuple[int, int]:
        """(base offset, total size) of the frame at ``position`` of ``buffer`` (read at ``start``).

        Checks only what hopping to the next frame needs; the CRC is the client's to check.
        """
        if position + HEADER_SIZE > len(buffer):
            raise InvalidBatch(start + position, "truncated batch header")
        base, length = _OFFSET_AND_LENGTH.unpack_from(buffer, position)
        total = length + LENGTH_PREFIX
        if (
            buffer[position + _MAGIC_AT] != MAGIC
            or not HEADER_SIZE <= total <= MAX_BATCH_BYTES
            or start + position + total > end
        ):
            raise InvalidBatch(start + position, "malformed batch header")
        return base, total

    def batch_headers(self) -> Iterator[BatchHeader]:
        """Every batch header of the published segment, in order (blocking: for scans)."""
        fd = self._lease_for_reading()
        try:
            for _position, header, _frame in self._frames(fd, 0, self.size, verify=False):
                yield header
        except InvalidBatch as invalid:
            raise CorruptLog(f"{self.log_path}: {invalid}; not scanned") from None
        except OSError as exc:
            raise storage_error(exc, f"read {self.log_path}", log_failed=False) from exc
        finally:
            self._files.release(self._log)

    def _lease_for_reading(self) -> int:
        try:
            return self._files.acquire(self._log)
        except OSError as exc:
            raise storage_error(exc, f"open {self.log_path}", log_failed=False) from exc

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        """First offset here with a timestamp >= ``timestamp``, or None."""
        if self.max_timestamp < timestamp:
            return None
        relative, start = self.index.entry_for_timestamp(timestamp)
        first = self.base_offset + relative
        fd = self._lease_for_reading()
        try:
            for position, header, frame in self._frames(
                fd, start, self.size, verify=False, first_offset=first
            ):
                if header.max_timestamp < timestamp:
                    continue
                if not crc_matches(frame, header):
                    raise InvalidBatch(position, "CRC-32C mismatch")
                for record in decode_records(frame, header.base_offset, header.record_count):
                    if record.timestamp >= timestamp:
                        return record.offset
        except InvalidBatch as invalid:
            raise CorruptLog(f"{self.log_path}: {invalid}; batch not served") from None
        except OSError as exc:
            raise storage_error(exc, f"read {self.log_path}", log_failed=False) from exc
        finally:
            self._files.release(self._log)
        return None

    # ----------------------------------------------------------------- writing

    def plan(self, frames: Sequence[bytes | bytearray]) -> SegmentWrite:
        """Where ``frames`` go and the index entries they need (no I/O, no mutation)."""
        position = self.size
        max_timestamp = self.max_timestamp
        since = self.index.bytes_since_entry
        next_offset = self.next_offset
        entries: list[tuple[int, int, int]] = []
        for frame in frames:
            header = parse_header(frame)
            if since >= INDEX_INTERVAL_BYTES:
                entries.append((header.base_offset - self.base_offset, position, max_timestamp))
                since = 0
            since += header.total_size
            position += header.total_size
            max_timestamp = max(max_timestamp, header.max_timestamp)
            next_offset = header.next_offset
        return SegmentWrite(
            self.size,
            b"".join(frames),
            tuple(entries),
            position,
            next_offset,
            max_timestamp,
            since,
        )

    def write(self, planned: SegmentWrite, *, sync: bool, hold_until_sync: bool = False) -> None:
        """Write planned frames and index entries (blocking); fsync the log if ``sync``.

        On failure the log file is truncated back to ``planned.start`` (best
        effort) and the ``OSError`` propagates; nothing was published.  When
        the log's descriptor cannot be opened, :class:`SegmentFileUnavailable`
        is raised before anything is written.  ``hold_until_sync``: an
        unsynced write keeps its lease on the log until :meth:`sync` (see
        "Durability" in :mod:`minimq.storage.descriptors`).
        """
        leased = [self._log]
        if planned.index_entries and self._index_files is not None:
            leased.extend(self._index_files)
        # Every descriptor first, so that one that cannot be opened leaves nothing written.
        fds = self._acquire_all(leased)
        keep = False
        try:
            fd = fds[0]
            try:
                pwrite_all(fd, planned.data, planned.start)
                if len(fds) == 3:
                    entries = planned.index_entries
                    write_all(fds[1], b"".join(OFFSET_ENTRY.pack(r, p) for r, p, _ in entries))
                    write_all(fds[2], b"".join(TIME_ENTRY.pack(t, r) for r, _, t in entries))
                if sync:
                    os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, planned.start)
                raise
            keep = hold_until_sync and not sync and not self._unsynced
            self._unsynced = self._unsynced or keep
        finally:
            for file in leased[1:] if keep else leased:
                self._files.release(file)

    def discard_unpublished(self) -> None:
        """Cut the log and index files back to the published state; fsync the log (blocking).

        For recovering from a failed write in place: nothing past ``size`` was
        ever published, so nothing acknowledged is dropped.
        """
        fd = self._acquire(self._log)
        try:
            os.ftruncate(fd, self.size)
            os.fsync(fd)
        finally:
            self._files.release(self._log)
        if self._index_files is not None:
            entries = len(self.index)
            for file, entry_size in zip(
                self._index_files, (OFFSET_ENTRY.size, TIME_ENTRY.size), strict=True
            ):
                index_fd = self._acquire(file)
                try:
                    os.ftruncate(index_fd, entries * entry_size)
                finally:
                    self._files.release(file)

    def publish(self, planned: SegmentWrite, now_ms: int) -> None:
        """Make written frames visible to readers (event-loop thread)."""
        for rel, position, prior_max in planned.index_entries:
            self.index.add(rel, position, prior_max)
        self.index.bytes_since_entry = planned.bytes_since_entry
        self.next_offset = planned.next_offset
        self.max_timestamp = planned.max_timestamp
        if self.first_append_ms is None:
            self.first_append_ms = now_ms
        self.size = planned.end

    def sync(self) -> None:
        """fsync the log and index files (blocking).

        Raises :class:`SegmentFileUnavailable` when a descriptor cannot be
        opened (nothing was synced), other ``OSError`` s when an fsync fails.
        """
        # The log last: a descriptor that cannot be reopened then fails the call
        # before the log's fsync, which is never retried after it ran.
        for file in (*(self._index_files or ()), self._log):
            fd = self._acquire(file)
            try:
                os.fsync(fd)
            finally:
                self._files.release(file)
        self._release_unsynced()

    def _release_unsynced(self) -> None:
        if self._unsynced:
            self._unsynced = False
            self._files.release(self._log)

    def seal(self) -> None:
        """Stop appending to the index files, once ``sync`` succeeded and the next segment exists.

        Not part of ``sync``: a roll that then fails to create the next segment
        leaves this one active, still appending to its index files.  An index
        that is only in memory is written now, if there is space.
        """
        self.persist_index()
        self._close_index_files()

    def _close_index_files(self) -> None:
        for file in self._index_files or ():
            self._files.discard(file)
        self._index_files = None

    def close(self) -> None:
        """Give the segment's descriptors back (closed now, or after a reader's lease ends)."""
        self._release_unsynced()
        self._close_index_files()
        self._files.discard(self._log)

    def delete(self) -> None:
        """Close and remove the segment's files (blocking; caller fsyncs the directory)."""
        self.close()
        for path in (self.log_path, self.index_path, self.time_index_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
