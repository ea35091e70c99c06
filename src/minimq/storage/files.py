"""Small durable-file primitives: full writes, directory fsync, atomic replace, the lock.

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
    replace_file(path, data)
    fsync_dir(path.parent)


def replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (tmp file, fsync, rename); the caller fsyncs the directory.

    On failure (ENOSPC...) the temporary file is removed before the
    ``OSError`` propagates, so a full disk gets none of its space taken.
    """
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


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
    """Exclusive ``flock`` s on the data directory itself and on ``DATA_DIR/.lock``.

    The directory is the lock that counts: it cannot be deleted or replaced
    under a running broker the way a lock file can (a broker that trusted
    ``.lock`` alone shared its data directory with a second one once someone
    deleted the file).  ``.lock`` is locked too, for brokers of earlier
    versions, which lock only that, and holds the pid for operators.
    ``flock`` locks belong to the open file description, so a second opener
    fails even inside the same process, and the kernel drops them when the
    process dies (no stale lock after kill -9).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / ".lock"
        self._fds: list[int] = []

    def acquire(self) -> None:
        """Take both locks or neither; ``DataDirLocked`` when another holder has one."""
        try:
            self._lock(os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY))
            self._lock(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644))
        except BaseException:
            self.release()
            raise
        # The pid is for people, not for locking: a full disk must not stop a start.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fds[-1], 0)
            os.write(self._fds[-1], f"{os.getpid()}\n".encode())

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataDirLocked(
                    f"data directory {self.data_dir} is in use by another broker"
                ) from None
            raise
        self._fds.append(fd)

    def release(self) -> None:
        for fd in reversed(self._fds):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._fds.clear()
