"""A segment roll that cannot create the next segment: the log stays as it was, and writable.

EMFILE (too many open files) or ENOSPC (no inode or directory block left)
when creating the new segment's files changes nothing that is stored, so the
partition must not be poisoned as it is after a failed write or fsync of
data: the append that needed the roll is refused, and a later one succeeds
once the cause is gone.  A failed fsync at roll still poisons the log.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import LogFailed, StorageError, StorageFull
from minimq.storage import open_storage
from minimq.storage.engine import CLEAN_SHUTDOWN_FILE
from minimq.storage.partition import DiskPartitionLog
from tests.storage.conftest import SMALL_SEGMENTS, records


class CreateFaults:
    """Armed, ``os.open`` fails with ``error`` creating a ``*suffix`` file in ``directory``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: int, suffix: str) -> None:
        self.error = error
        self.suffix = suffix
        self.directory: Path | None = None
        self.injected = 0
        real: Callable[..., int] = os.open

        def open_(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
            target = Path(path)
            if (
                self.directory is not None
                and flags & os.O_CREAT
                and target.parent == self.directory
                and target.name.endswith(self.suffix)
            ):
                self.injected += 1
                raise OSError(self.error, os.strerror(self.error), str(path))
            return real(path, flags, mode, dir_fd=dir_fd)

        monkeypatch.setattr(os, "open", open_)

    def arm(self, directory: Path) -> None:
        self.directory = directory

    def disarm(self) -> None:
        self.directory = None


def files(log: DiskPartitionLog) -> list[str]:
    return sorted(path.name for path in log.directory.iterdir())


async def stored(log: DiskPartitionLog) -> list[tuple[int, bytes | None]]:
    return [(r.offset, r.value) for r in await log.read(log.start_offset, 10_000, 1 << 30)]


@pytest.mark.parametrize("fsync", ["always", "never"])
@pytest.mark.parametrize(
    ("error", "suffix", "expected"),
    [
        (errno.EMFILE, ".log", StorageError),  # nothing created
        (errno.EMFILE, ".index", StorageError),  # the new .log exists: must be removed
        (errno.ENOSPC, ".timeindex", StorageFull),  # .log and .index exist
        (errno.ENOSPC, ".log", StorageFull),
    ],
)
async def test_a_roll_that_cannot_create_the_next_segment_leaves_the_log_writable(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: int,
    suffix: str,
    expected: type[StorageError],
    fsync: str,
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", replace(SMALL_SEGMENTS, fsync=FsyncPolicy.parse(fsync)))
    log = storage.logs.partition("t", 0)
    faults = CreateFaults(monkeypatch, error, suffix)
    before = files(log)
    acknowledged: list[tuple[int, bytes | None]] = []
    faults.arm(log.directory)
    # Appends that fit the active segment go through; the first one that needs a roll fails.
    refused: StorageError | None = None
    for number in range(100):
        batch = records(1, start=number)
        try:
            acknowledged.append((await log.append(batch), batch[0].value))
        except StorageError as exc:
            refused = exc
            break
    assert refused is not None and faults.injected == 1
    assert type(refused) is expected, refused  # not LOG_FAILED: the log has not failed
    assert not log.failed
    assert (log.segment_count, log.end_offset) == (1, len(acknowledged))
    assert files(log) == before, "a half-created segment was left behind"
    assert await stored(log) == acknowledged

    # Still failing: refused the same way, never poisoned.
    with pytest.raises(expected) as again:
        await log.append(records(1, start=len(acknowledged)))
    assert type(again.value) is expected
    assert files(log) == before

    faults.disarm()  # the cause is gone: the roll succeeds and the append with it
    for number in range(len(acknowledged), len(acknowledged) + 5):
        batch = records(1, start=number)
        assert await log.append(batch) == number
        acknowledged.append((number, batch[0].value))
    assert log.segment_count == 2
    assert await stored(log) == acknowledged
    await storage.close()
    assert (data_dir / CLEAN_SHUTDOWN_FILE).exists()

    # Recovery re-verifies the active segment when the marker is missing: still exact.
    (data_dir / CLEAN_SHUTDOWN_FILE).unlink()
    storage = await open_storage(data_dir)
    log = storage.logs.partition("t", 0)
    assert await stored(log) == acknowledged
    assert await log.append(records(1, start=len(acknowledged))) == len(acknowledged)
    await storage.close()


async def test_retention_keeps_an_expired_active_segment_it_cannot_roll(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", TopicConfig(segment_bytes=1024, retention_ms=60_000))
    log = storage.logs.partition("t", 0)
    for number in range(20):  # timestamps in 1970: every segment has expired
        await log.append(records(3, start=number * 3))
    segments = log.segment_count
    assert segments > 2
    faults = CreateFaults(monkeypatch, errno.EMFILE, ".log")
    faults.arm(log.directory)
    # The sealed segments go; the active one cannot be rolled away, so it stays for now.
    assert await storage.logs.apply_retention() == segments - 1
    assert not log.failed
    assert log.segment_count == 1
    assert log.end_offset == 60
    assert [offset for offset, _ in await stored(log)] == list(range(log.start_offset, 60))
    faults.disarm()
    assert await storage.logs.apply_retention() == 1
    assert log.start_offset == log.end_offset == 60
    assert await log.append(records(1, start=60)) == 60
    await storage.close()


@pytest.mark.parametrize("target", ["segment", "directory"])
async def test_a_failed_fsync_at_roll_still_poisons_the_log(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    # Under fsync=never the roll's fsyncs are the first ones: of the sealed segment,
    # then of the directory holding the new one.  Either failing is a failed fsync,
    # never retried: nothing more is acknowledged until the log is reopened.
    storage = await open_storage(data_dir, FsyncPolicy.parse("never"))
    await storage.logs.create_topic("t", SMALL_SEGMENTS)
    log = storage.logs.partition("t", 0)
    directory = str(log.directory.resolve())
    armed = [False]
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        hit = path == directory if target == "directory" else path.startswith(directory + "/")
        if armed[0] and hit:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    acknowledged: list[tuple[int, bytes | None]] = []
    armed[0] = True
    with pytest.raises(LogFailed):  # the append that needs a roll
        for number in range(100):
            batch = records(1, start=number)
            acknowledged.append((await log.append(batch), batch[0].value))
    assert log.failed
    armed[0] = False
    with pytest.raises(LogFailed):
        await log.append(records(1, start=len(acknowledged)))
    await storage.close()
    assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists()

    storage = await open_storage(data_dir)
    log = storage.logs.partition("t", 0)
    assert await stored(log) == acknowledged
    assert await log.append(records(1, start=len(acknowledged))) == len(acknowledged)
    await storage.close()
