"""Opening a data directory: the lock, the clean-shutdown marker, recovery, the stores.

``DATA_DIR/.lock`` is held (``flock``) from open to close.  ``DATA_DIR/.clean-shutdown``
is written (atomically) by ``close`` after every partition was fsynced, and
removed by ``open`` before anything is written: when it is present the last
segment of each partition is trusted with its index; when it is absent that
segment is re-verified frame by frame and a torn tail truncated.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from minimq.storage.api import FsyncPolicy
from minimq.storage.files import DataDirLock, atomic_write, fsync_dir
from minimq.storage.offsets import SqliteOffsetStore
from minimq.storage.topics import DiskLogStore

log = logging.getLogger(__name__)

CLEAN_SHUTDOWN_FILE: Final = ".clean-shutdown"
OFFSETS_FILE: Final = "offsets.sqlite3"
DEFAULT_FSYNC: Final = FsyncPolicy()


class DiskStorage:
    """An opened data directory (the ``Storage`` protocol)."""

    def __init__(
        self, data_dir: Path, lock: DataDirLock, logs: DiskLogStore, offsets: SqliteOffsetStore
    ) -> None:
        self.data_dir = data_dir
        self._lock = lock
        self._logs = logs
        self._offsets = offsets
        self._closed = False

    @property
    def logs(self) -> DiskLogStore:
        return self._logs

    @property
    def offsets(self) -> SqliteOffsetStore:
        return self._offsets

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
                await asyncio.get_running_loop().run_in_executor(None, atomic_write, marker, b"")
        finally:
            self._lock.release()


async def open_storage(data_dir: Path, default_fsync: FsyncPolicy = DEFAULT_FSYNC) -> DiskStorage:
    """Lock ``data_dir`` (``DataDirLocked`` if taken), recover it and open every topic.

    Raises ``CorruptLog`` when a sealed segment holds a corrupt batch.
    """
    data_dir = Path(data_dir)
    lock = DataDirLock(data_dir)
    logs = DiskLogStore(data_dir, default_fsync)

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
    await loop.run_in_executor(None, open_logs)
    try:
        offsets = await SqliteOffsetStore.open(data_dir / OFFSETS_FILE)
        # A just-created offsets database must not lose its directory entry on power loss.
        await loop.run_in_executor(None, fsync_dir, data_dir)
    except BaseException:
        await logs.close()
        lock.release()
        raise
    return DiskStorage(data_dir, lock, logs, offsets)
