"""Small durable-file primitives: full writes, directory fsync, atomic replace, the lock file.

Every function here blocks; callers run them off the event loop (or during
open, which runs in a worker thread).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from minimq.errors import DataDirLocked, LogFailed, StorageError, StorageFull

TMP_SUFFIX = ".tmp"


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, position: int) -> None:
    """Write all of ``data`` at ``position``; short writes are continued, errors raised."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` at the file's current position (``O_APPEND`` files)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (created, renamed, removed files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: tmp file, fsync, rename, fsync the directory.

    A crash leaves either the old or the new content, plus at most a ``.tmp``
    file that recovery deletes.
    """
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def storage_error(exc: OSError, what: str, *, log_failed: bool = True) -> StorageError:
    """The MiniMQ error for a failed file operation: full disk, a failed log, or neither.

    ``log_failed=False`` is for failures that changed nothing stored (files
    that could not be created): the log is still writable, so anything but a
    full disk is a plain ``StorageError``, not ``LogFailed``.
    """
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"{what}: no space left on device")
    reason = os.strerror(exc.errno or errno.EIO)
    return LogFailed(f"{what}: {reason}") if log_failed else StorageError(f"{what}: {reason}")


class DataDirLock:
    """An exclusive ``flock`` on ``DATA_DIR/.lock``, held while the data directory is open.

    ``flock`` locks belong to the open file description, so a second opener
    fails even inside the same process, and the kernel drops the lock when the
    process dies (no stale lock after kill -9).
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataDirLocked(
                    f"data directory {self.path.parent} is in use by another broker"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
