"""Opening a data directory: the lock, the clean-shutdown marker, recovery, the stores.

The data directory itself and ``DATA_DIR/.lock`` are held (``flock``) from
open to close (see :class:`~minimq.storage.files.DataDirLock`).
``DATA_DIR/.clean-shutdown`` is written (atomically) by ``close`` after every
partition was fsynced, and removed by ``open`` before anything is written:
when it is present the last segment of each partition is trusted with its
index; when it is absent that segment is re-verified frame by frame and a
torn tail truncated.  Without space for the marker, ``close`` leaves it out
(the next open verifies, which is always safe).

``DATA_DIR/producer-ids`` reserves the ids handed to idempotent Kafka
producers (:mod:`minimq.storage.producer_ids`).

Every failure to open is a :class:`~minimq.errors.StorageError` naming the
file and the reason (a read-only or foreign data directory is
``"DATA_DIR/.lock: Permission denied"``), never a bare ``OSError``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from pathlib import Path
from typing import Final

from minimq.core.storage_seam import AppendListener, SingleGatewayLeases
from minimq.core.topic_config import FsyncPolicy
from minimq.errors import StorageError
from minimq.storage.files import DataDirLock, atomic_write, fsync_dir
from minimq.storage.limits import StorageLimits
from minimq.storage.offsets import SqliteOffsetStore
from minimq.storage.producer_ids import DiskProducerIdStore
from minimq.storage.topics import DiskLogStore

log = logging.getLogger(__name__)

CLEAN_SHUTDOWN_FILE: Final = ".clean-shutdown"
OFFSETS_FILE: Final = "offsets.sqlite3"
DEFAULT_FSYNC: Final = FsyncPolicy()
# Descriptors besides segment files: the locks, the offsets database, a few
# connections (the server bounds its own with --max-connections).
DESCRIPTOR_RESERVE: Final = 64


class DiskStorage:
    """An opened data directory (the ``Storage`` protocol)."""

    def __init__(
        self, data_dir: Path, lock: DataDirLock, logs: DiskLogStore, offsets: SqliteOffsetStore
    ) -> None:
        self.data_dir = data_dir
        self._lock = lock
        self._logs = logs
        self._offsets = offsets
        self._producer_ids = DiskProducerIdStore(data_dir)
        # The data directory's lock makes this process its only user: it owns every group.
        self._group_leases = SingleGatewayLeases()
        self._closed = False

    @property
    def logs(self) -> DiskLogStore:
        return self._logs

    @property
    def offsets(self) -> SqliteOffsetStore:
        return self._offsets

    @property
    def producer_ids(self) -> DiskProducerIdStore:
        return self._producer_ids

    @property
    def group_leases(self) -> SingleGatewayLeases:
        return self._group_leases

    def add_append_listener(self, listener: AppendListener) -> None:
        """Call ``listener(topic, partition)`` after each append this process stored.

        Only this process can hold the data directory, so its own appends are all there are.
        """
        self._logs.add_append_listener(listener)

    async def close(self) -> None:
        """Drain appends, fsync and close every log, mark a clean shutdown, release the lock."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._logs.close()
            await self._offsets.close()
            if self._logs.all_closed_cleanly:
                marker = self.data_dir / CLEAN_SHUTDOWN_FILE
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        None, atomic_write, marker, b""
                    )
                except OSError as exc:
                    log.warning(
                        "%s: not written (%s); the next start verifies the active segments",
                        marker,
                        exc.strerror,
                    )
        finally:
            self._lock.release()


async def open_storage(
    data_dir: Path,
    default_fsync: FsyncPolicy = DEFAULT_FSYNC,
    limits: StorageLimits | None = None,
) -> DiskStorage:
    """Lock ``data_dir`` (``DataDirLocked`` if taken), recover it and open every topic.

    Raises ``CorruptLog`` when a sealed segment holds a corrupt batch, and
    ``StorageError`` naming the file for any other failure (permissions, a
    read-only file system, descriptors).
    """
    data_dir = Path(data_dir)
    lock = DataDirLock(data_dir)
    logs = DiskLogStore(data_dir, default_fsync, limits)
    _warn_if_descriptors_are_short(logs.limits)

    def open_logs() -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        try:
            marker = data_dir / CLEAN_SHUTDOWN_FILE
            clean = marker.exists()
            if clean:
                marker.unlink()
                fsync_dir(data_dir)
            else:
                log.info("%s: no clean-shutdown marker, verifying active segments", data_dir)
            logs.open_all(clean=clean)
        except BaseException:
            lock.release()
            raise

    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, open_logs)
    except OSError as exc:
        raise StorageError(_describe(exc)) from exc
    try:
        # The offsets store drops the commits of topics that are gone and adopts those of
        # topics that got their id just now; only then are those ids written down.
        offsets = await SqliteOffsetStore.open(
            data_dir / OFFSETS_FILE,
            topic_ids=logs.topic_ids(),
            adopt=logs.unpersisted_topic_ids,
            live_topic_id=logs.topic_id,
        )
        await loop.run_in_executor(None, logs.persist_topic_ids)
        # A just-created offsets database must not lose its directory entry on power loss.
        await loop.run_in_executor(None, fsync_dir, data_dir)
    except BaseException as exc:
        await logs.close()
        lock.release()
        if isinstance(exc, OSError):
            raise StorageError(_describe(exc)) from exc
        raise
    return DiskStorage(data_dir, lock, logs, offsets)


def _warn_if_descriptors_are_short(limits: StorageLimits) -> None:
    """Say so when the process may not open as many files as the segment cache may hold."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_open_segment_files + DESCRIPTOR_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "RLIMIT_NOFILE is %d, less than the %d segment files the cache may keep open plus "
            "%d for the rest: raise it (ulimit -n) or lower --max-open-segment-files, else "
            "reads and appends may fail with 'too many open files'",
            soft,
            limits.max_open_segment_files,
            DESCRIPTOR_RESERVE,
        )


def _describe(exc: OSError) -> str:
    """``"<file>: <reason>"``, the one line a failed open is reported as."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason
