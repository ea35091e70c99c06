"""Sparse offset and time indexes of one segment.

Every ``INDEX_INTERVAL_BYTES`` (4 KiB) of log, the batch that starts there gets
an entry.  Entries live in memory (three parallel lists searched with
``bisect``) and in two append-only files next to the segment::

    <base>.index      8 bytes per entry:  relativeOffset uint32, position uint32
    <base>.timeindex 12 bytes per entry:  priorMaxTimestamp int64, relativeOffset uint32

``relativeOffset`` is the entry batch's base offset minus the segment's base
offset; ``position`` is the byte position of that batch in the ``.log``;
``priorMaxTimestamp`` is the largest record timestamp of every batch *before*
the entry (-1 when none), so it never decreases and every record before an
entry whose ``priorMaxTimestamp`` is below T has a timestamp below T.

The first batch of a segment needs no entry: a lookup below the first entry
starts at position 0.  Index files are derived data: they are written without
fsync while appending, fsynced when the segment is sealed or the log closed,
and rebuilt from the ``.log`` whenever they are missing, torn or inconsistent.

Concurrency: not thread-safe.  The partition's event-loop thread owns the
in-memory lists; the file is written by the partition writer, one call at a time.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Final

from minimq.storage.files import replace_file

INDEX_INTERVAL_BYTES: Final = 4096
OFFSET_ENTRY: Final = struct.Struct(">II")
TIME_ENTRY: Final = struct.Struct(">qI")


class SegmentIndex:
    """In-memory sparse index of one segment plus the encoding of its files."""

    __slots__ = ("bytes_since_entry", "positions", "prior_max_timestamps", "relative_offsets")

    def __init__(self) -> None:
        self.relative_offsets: list[int] = []
        self.positions: list[int] = []
        self.prior_max_timestamps: list[int] = []
        self.bytes_since_entry = 0

    def __len__(self) -> int:
        return len(self.positions)

    def add(self, relative_offset: int, position: int, prior_max_timestamp: int) -> None:
        self.relative_offsets.append(relative_offset)
        self.positions.append(position)
        self.prior_max_timestamps.append(prior_max_timestamp)

    def entry_for_offset(self, relative_offset: int) -> tuple[int, int]:
        """(relative offset, position) of the last indexed batch at or before ``relative_offset``.

        ``(0, 0)`` (the segment's first batch) when no entry is that early.
        """
        slot = bisect_right(self.relative_offsets, relative_offset) - 1
        return (self.relative_offsets[slot], self.positions[slot]) if slot >= 0 else (0, 0)

    def entry_for_timestamp(self, timestamp: int) -> tuple[int, int]:
        """(relative offset, position) of a batch at or before the first holding ``timestamp``."""
        slot = bisect_left(self.prior_max_timestamps, timestamp) - 1
        return (self.relative_offsets[slot], self.positions[slot]) if slot >= 0 else (0, 0)

    def last_position(self) -> int:
        return self.positions[-1] if self.positions else 0

    def encode_entries(self, start: int) -> tuple[bytes, bytes]:
        """File bytes of the entries from number ``start`` on: (offset index, time index)."""
        offsets = b"".join(
            OFFSET_ENTRY.pack(rel, pos)
            for rel, pos in zip(self.relative_offsets[start:], self.positions[start:], strict=True)
        )
        times = b"".join(
            TIME_ENTRY.pack(ts, rel)
            for ts, rel in zip(
                self.prior_max_timestamps[start:], self.relative_offsets[start:], strict=True
            )
        )
        return offsets, times

    @classmethod
    def load(cls, index_path: Path, time_path: Path, log_size: int) -> SegmentIndex | None:
        """The index stored in the two files, or None when missing or inconsistent.

        Consistent means: whole entries, the same count in both files, matching
        relative offsets, strictly increasing offsets and positions, positions
        inside the log, and non-decreasing prior max timestamps.
        """
        try:
            raw_offsets = index_path.read_bytes()
            raw_times = time_path.read_bytes()
        except FileNotFoundError:
            return None
        count, rest = divmod(len(raw_offsets), OFFSET_ENTRY.size)
        if rest or len(raw_times) != count * TIME_ENTRY.size:
            return None
        index = cls()
        previous = (-1, -1, -1)
        for (rel, pos), (ts, time_rel) in zip(
            OFFSET_ENTRY.iter_unpack(raw_offsets), TIME_ENTRY.iter_unpack(raw_times), strict=True
        ):
            if rel != time_rel or rel <= previous[0] or pos <= previous[1] or ts < previous[2]:
                return None
            if pos >= log_size:
                return None
            index.add(rel, pos, ts)
            previous = (rel, pos, ts)
        return index


def write_index_files(index: SegmentIndex, index_path: Path, time_path: Path) -> None:
    """Replace both index files with ``index`` (tmp file, fsync, rename).

    On failure (ENOSPC...) the temporary file is removed before the
    ``OSError`` propagates, so a full disk gets none of its space taken.
    """
    offsets, times = index.encode_entries(0)
    for path, data in ((index_path, offsets), (time_path, times)):
        replace_file(path, data)
