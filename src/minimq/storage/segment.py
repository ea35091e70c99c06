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

Concurrency: the partition's event-loop thread calls ``read``,
``offset_for_timestamp`` and ``publish``; the blocking methods (``create``,
``load``, ``write``, ``sync``, ``seal``, ``delete``) run in a worker thread,
one at a time per partition (the partition's writer lock).  ``write`` only
touches bytes at or past ``size``, which readers never read, and
``os.pread`` on a shared descriptor is safe from any thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from minimq.errors import CorruptLog
from minimq.storage.api import Record
from minimq.storage.batch import (
    HEADER_SIZE,
    BatchHeader,
    crc_matches,
    decode_records,
    header_is_plausible,
    parse_header,
    payload_size,
)
from minimq.storage.files import pwrite_all, write_all
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


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}"


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

    def __init__(self, directory: Path, base_offset: int, fd: int) -> None:
        self.directory = directory
        self.base_offset = base_offset
        name = segment_name(base_offset)
        self.log_path = directory / (name + LOG_SUFFIX)
        self.index_path = directory / (name + INDEX_SUFFIX)
        self.time_index_path = directory / (name + TIME_INDEX_SUFFIX)
        self._fd = fd
        self._index_fd: int | None = None
        self._time_fd: int | None = None
        self.index = SegmentIndex()
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.first_append_ms: int | None = None  # wall time of the first batch, for age rolls

    # ----------------------------------------------------------------- opening

    @classmethod
    def create(cls, directory: Path, base_offset: int) -> Segment:
        """A new, empty active segment (blocking; the caller fsyncs the directory).

        If any of its three files cannot be created (EMFILE, ENOSPC, ...), the
        ones already made are closed and removed before the ``OSError``
        propagates: a leftover ``.log`` would make every later attempt fail on
        ``O_EXCL``, so a failed roll could never be retried.
        """
        name = segment_name(base_offset)
        fd = os.open(directory / (name + LOG_SUFFIX), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        segment = cls(directory, base_offset, fd)
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
    def load(cls, directory: Path, base_offset: int, *, active: bool, recover: bool) -> Segment:
        """Open an existing segment (blocking).

        ``recover``: verify every frame's CRC and rebuild the index; for the
        active segment an invalid frame and everything after it is truncated
        (a torn tail), for a sealed one it raises ``CorruptLog``.  Otherwise
        the stored index is used if consistent, else rebuilt the same way.
        """
        fd = os.open(directory / (segment_name(base_offset) + LOG_SUFFIX), os.O_RDWR)
        segment = cls(directory, base_offset, fd)
        try:
            segment.size = os.fstat(fd).st_size
            stored = (
                None
                if recover
                else SegmentIndex.load(segment.index_path, segment.time_index_path, segment.size)
            )
            if stored is None:
                segment._rebuild(may_truncate=active)
            else:
                segment.index = stored
                segment._scan_tail()
            if active:
                segment._open_index_files(truncate=False)
        except BaseException:
            segment.close()
            raise
        return segment

    def _open_index_files(self, *, truncate: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        self._index_fd = os.open(self.index_path, flags, 0o644)
        self._time_fd = os.open(self.time_index_path, flags, 0o644)

    def _rebuild(self, *, may_truncate: bool) -> None:
        """Verify every frame from byte 0, rebuild the index, truncate a torn tail."""
        self.index = SegmentIndex()
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        position = 0
        try:
            for position, header, _frame in self._frames(0, self.size, verify=True):
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
            os.ftruncate(self._fd, position)
            os.fsync(self._fd)
            self.size = position
        write_index_files(self.index, self.index_path, self.time_index_path)
        self._set_first_append_time()

    def _scan_tail(self) -> None:
        """Recompute next offset and max timestamp from the last index entry on (headers only)."""
        index = self.index
        start = index.last_position()
        self.max_timestamp = index.prior_max_timestamps[-1] if len(index) else NO_TIMESTAMP
        self.next_offset = self.base_offset + (index.relative_offsets[-1] if len(index) else 0)
        try:
            for position, header, _frame in self._frames(start, self.size, verify=False):
                self._account(header, position, index_it=False)
        except InvalidBatch as invalid:
            raise CorruptLog(f"{self.log_path}: {invalid}; refusing to open") from None
        index.bytes_since_entry = self.size - start
        self._set_first_append_time()

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

    def _set_first_append_time(self) -> None:
        # The file records no creation time, so a reloaded segment ages from its
        # first batch's timestamp; producer timestamps in the past can make it
        # roll at its next append (once: the new segment ages from wall time).
        if self.size >= HEADER_SIZE:
            self.first_append_ms = parse_header(os.pread(self._fd, HEADER_SIZE, 0)).base_timestamp

    # ----------------------------------------------------------------- reading

    def _frames(
        self, position: int, end: int, *, verify: bool, first_offset: int | None = None
    ) -> Iterator[tuple[int, BatchHeader, memoryview]]:
        """Frames from ``position`` (a frame boundary) up to ``end``, read in large chunks.

        With ``first_offset`` every frame's base offset must continue the chain
        from it: the CRC does not cover the base offset, so this is what keeps
        a damaged one from serving records under the wrong offsets.
        """
        expected = first_offset
        fd = self._fd
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
        """
        out: list[Record] = []
        budget = max_bytes
        relative, start = self.index.entry_for_offset(offset - self.base_offset)
        first = self.base_offset + relative
        try:
            for position, header, frame in self._frames(
                start, self.size, verify=False, first_offset=first
            ):
                if header.last_offset < offset:
                    continue
                if not crc_matches(frame, header):
                    raise InvalidBatch(position, "CRC-32C mismatch")
                records = decode_records(frame, offset, max_records - len(out))
                if header.total_size <= budget:
                    # The frame is larger than its records' payload, so all of them fit.
                    out.extend(records)
                    budget -= header.total_size
                else:
                    for record in records:
                        size = payload_size(record)
                        if (out or not at_least_one) and size > budget:
                            return out, 0
                        out.append(record)
                        budget = max(budget - size, 0)
                if len(out) >= max_records or budget <= 0:
                    break
                offset = header.next_offset
        except InvalidBatch as invalid:
            raise CorruptLog(f"{self.log_path}: {invalid}; batch not served") from None
        return out, budget

    def offset_for_timestamp(self, timestamp: int) -> int | None:
        """First offset here with a timestamp >= ``timestamp``, or None."""
        if self.max_timestamp < timestamp:
            return None
        relative, start = self.index.entry_for_timestamp(timestamp)
        first = self.base_offset + relative
        try:
            for position, header, frame in self._frames(
                start, self.size, verify=False, first_offset=first
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

    def write(self, planned: SegmentWrite, *, sync: bool) -> None:
        """Write planned frames and index entries (blocking); fsync the log if ``sync``.

        On failure the log file is truncated back to ``planned.start`` (best
        effort) and the ``OSError`` propagates; nothing was published.
        """
        try:
            pwrite_all(self._fd, planned.data, planned.start)
            if planned.index_entries and self._index_fd is not None and self._time_fd is not None:
                write_all(
                    self._index_fd,
                    b"".join(OFFSET_ENTRY.pack(rel, pos) for rel, pos, _ in planned.index_entries),
                )
                write_all(
                    self._time_fd,
                    b"".join(TIME_ENTRY.pack(ts, rel) for rel, _, ts in planned.index_entries),
                )
            if sync:
                os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, planned.start)
            raise

    def discard_unpublished(self) -> None:
        """Cut the log and index files back to the published state; fsync the log (blocking).

        For recovering from a failed write in place: nothing past ``size`` was
        ever published, so nothing acknowledged is dropped.
        """
        os.ftruncate(self._fd, self.size)
        os.fsync(self._fd)
        if self._index_fd is not None and self._time_fd is not None:
            os.ftruncate(self._index_fd, len(self.index) * OFFSET_ENTRY.size)
            os.ftruncate(self._time_fd, len(self.index) * TIME_ENTRY.size)

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
        """fsync the log and index files (blocking)."""
        os.fsync(self._fd)
        for fd in (self._index_fd, self._time_fd):
            if fd is not None:
                os.fsync(fd)

    def seal(self) -> None:
        """Stop appending to the index files, once ``sync`` succeeded and the next segment exists.

        Not part of ``sync``: a roll that then fails to create the next segment
        leaves this one active, still appending to its index files.
        """
        self._close_index_files()

    def _close_index_files(self) -> None:
        for fd in (self._index_fd, self._time_fd):
            if fd is not None:
                os.close(fd)
        self._index_fd = self._time_fd = None

    def close(self) -> None:
        self._close_index_files()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        """Close and remove the segment's files (blocking; caller fsyncs the directory)."""
        self.close()
        for path in (self.log_path, self.index_path, self.time_index_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
