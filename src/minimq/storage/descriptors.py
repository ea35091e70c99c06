"""A bounded cache of open segment files, shared by every partition of a data directory.

Why: a descriptor per segment file makes the open files grow with stored
data.  With thousands of topics the broker ran out of descriptors, could then
accept no connection, roll no segment, and finally not even start again.  So
every segment file (``.log``, ``.index``, ``.timeindex``, active or sealed) is
a :class:`CachedFile`, a path plus the flags it is reopened with, and its
descriptor is open only while it is among the ``capacity`` most recently used
ones.  When one more is needed, the least recently used idle descriptor is
closed; the next use of that file opens it again.  A segment nobody reads or
writes costs no descriptor, and a partition costs at most three while it is
busy, so the descriptors held for segments stay at ``capacity`` however many
topics, partitions and segments there are.

Leases.  Code that uses a descriptor holds a lease on it (:meth:`acquire` and
:meth:`release`, or ``with cache.lease(file) as fd``) for exactly as long as it
uses the number, and never keeps the number afterwards.  A leased descriptor
is never closed: eviction skips it, and :meth:`discard` (the segment is closed
or deleted) leaves closing to the last release.  Otherwise a reader could
``pread`` a number that another thread had just closed and the kernel had
already given to a different file.  More than ``capacity`` descriptors are
open only while more than ``capacity`` are leased at once; the cache shrinks
back as the leases end.

Durability.  Closing an idle descriptor loses nothing written through it: the
data is in the page cache of the file, and an fsync through a descriptor
opened later flushes it all the same.  A partition under ``fsync=interval``
keeps a lease on its active log from its first unsynced write until the fsync
that covers it (see ``Segment.write``), so a writeback error is reported to a
descriptor that was open all along; under ``always`` every write is fsynced
before its lease ends.

Concurrency: thread-safe.  One lock guards the cache's state; ``open`` and
``close`` of segment files run under it, so they are serialized (both are
metadata operations of microseconds on a local file system).  The event-loop
thread (reads, small writes) and worker threads (writes, fsyncs, recovery)
lease files alike.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path


class CachedFile:
    """One segment file: its path, how it is reopened, and its descriptor while open.

    Only :class:`DescriptorCache` reads or changes ``_fd``, ``_leases`` and
    ``_discarded``, under its lock.
    """

    __slots__ = ("_discarded", "_fd", "_leases", "flags", "path")

    def __init__(self, path: Path, flags: int) -> None:
        self.path = path
        self.flags = flags
        self._fd = -1
        self._leases = 0
        self._discarded = False

    def __repr__(self) -> str:
        return f"CachedFile({str(self.path)!r}, fd={self._fd}, leases={self._leases})"


class DescriptorCache:
    """At most ``capacity`` idle open segment files, least recently used closed first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        # Every file with an open descriptor, least recently used first.
        self._open: OrderedDict[CachedFile, None] = OrderedDict()
        self.opens = 0  # descriptors opened, for tests and figures
        self.evictions = 0

    @property
    def open_count(self) -> int:
        """Descriptors open right now (leased or idle)."""
        return len(self._open)

    def register(self, path: Path, flags: int) -> CachedFile:
        """A file opened with ``flags`` at its first use (no I/O now)."""
        return CachedFile(path, flags)

    def create(self, path: Path, create_flags: int, reopen_flags: int) -> CachedFile:
        """Open ``path`` now with ``create_flags`` (``O_EXCL``, ``O_TRUNC``: once only).

        Later reopens use ``reopen_flags``.  Raises the ``OSError`` of the open.
        """
        file = CachedFile(path, reopen_flags)
        with self._lock:
            file._fd = os.open(path, create_flags, 0o644)
            self.opens += 1
            self._open[file] = None
            self._evict()
        return file

    def acquire(self, file: CachedFile) -> int:
        """Lease ``file``'s descriptor, opening it if it is closed; pair with :meth:`release`.

        Raises ``OSError`` when it cannot be opened (EMFILE, ENOENT...) or was
        discarded (EBADF).
        """
        # acquire()/release() rather than ``with``: this runs for every read and
        # write, and the context manager doubles the lock's cost (~90 ns -> ~180 ns).
        lock = self._lock
        lock.acquire()
        try:
            if file._discarded:
                raise OSError(errno.EBADF, "segment file is closed", str(file.path))
            fd = file._fd
            if fd >= 0:
                self._open.move_to_end(file)
            else:
                fd = file._fd = os.open(file.path, file.flags, 0o644)
                self.opens += 1
                self._open[file] = None
                if len(self._open) > self.capacity:
                    file._leases += 1
                    self._evict()
                    return fd
            file._leases += 1
            return fd
        finally:
            lock.release()

    def release(self, file: CachedFile) -> None:
        """End one lease; the descriptor may be closed from now on."""
        lock = self._lock
        lock.acquire()
        try:
            file._leases -= 1
            if file._leases == 0 and file._discarded:
                self._close(file)
            elif len(self._open) > self.capacity:
                self._evict()
        finally:
            lock.release()

    @contextlib.contextmanager
    def lease(self, file: CachedFile) -> Iterator[int]:
        """``with cache.lease(file) as fd:``: :meth:`acquire` and :meth:`release` around it."""
        fd = self.acquire(file)
        try:
            yield fd
        finally:
            self.release(file)

    def discard(self, file: CachedFile) -> None:
        """Forget ``file`` (segment closed or deleted): close it now, or at its last release.

        Further :meth:`acquire` calls fail with EBADF.  Closing never raises:
        the file's data was made durable (or given up on) by its owner before.
        """
        with self._lock:
            file._discarded = True
            if file._leases == 0:
                self._close(file)

    def _evict(self) -> None:
        """Close idle descriptors, least recently used first, down to ``capacity`` (holds lock)."""
        excess = len(self._open) - self.capacity
        if excess <= 0:
            return
        # Idle files are nearly always at the front: leased ones were just used.
        idle = list(itertools.islice((f for f in self._open if f._leases == 0), excess))
        for file in idle:
            self._close(file)
            self.evictions += 1

    def _close(self, file: CachedFile) -> None:
        if file._fd >= 0:
            fd, file._fd = file._fd, -1
            del self._open[file]
            # close() may report a deferred writeback error (NFS); the owner's fsync,
            # not close, decides durability, and the descriptor is released either way.
            with contextlib.suppress(OSError):
                os.close(fd)
