"""Recovery on a full disk: a start after kill -9 needs no new space and serves every record.

The full disk is a wrapped file layer (unprivileged): while armed, every
``os.write`` and ``os.pwrite`` of a byte to a file under the data directory
fails with ENOSPC, as on a disk without a free block.  Truncating and
fsyncing still work, as they do on a full disk, and so does the pid written
into ``.lock`` right after truncating it (it takes back the block the
truncation freed).  ``tests/reliability/
test_startup_edges.py`` runs the same on a real, full tmpfs where it can.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.errors import StorageFull
from minimq.storage import open_storage
from minimq.storage.index import SegmentIndex

CONFIG = TopicConfig(partitions=1, segment_bytes=32 * 1024)


class FullDisk:
    """``os.write`` / ``os.pwrite`` of data to files under ``root`` fail with ENOSPC while armed."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = str(root.resolve())
        self.armed = False
        self.refused = 0
        for name in ("write", "pwrite"):
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))

    def _wrap(self, real: Callable[..., int]) -> Callable[..., int]:
        def call(fd: int, data: Any, *args: Any) -> int:
            if self.armed and len(data) and self._ours(fd):
                self.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, data, *args)

        return call

    def _ours(self, fd: int) -> bool:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return False
        return path.startswith(self.root) and not path.endswith("/.lock")


def batch(number: int) -> list[NewRecord]:
    return [NewRecord(None, f"{number:05d}-{i}-".encode() + b"v" * 300) for i in range(3)]


async def crashed_partition(data_dir: Path) -> tuple[Path, list[bytes]]:
    """Topic ``t``: several sealed segments with index entries, left as after kill -9.

    A sealed segment lost its index files (rebuilt at open) and the active one
    has a torn tail (truncated at open), so recovery has an index to rebuild
    for both kinds.
    """
    storage = await open_storage(data_dir)
    await storage.logs.create_topic("t", CONFIG)
    log = storage.logs.partition("t", 0)
    values: list[bytes] = []
    for number in range(150):
        records = batch(number)
        await log.append(records)
        values.extend(r.value for r in records if r.value is not None)
    assert log.segment_count >= 4
    await storage.close()
    directory = data_dir / "topics" / "t" / "0"
    (data_dir / ".clean-shutdown").unlink()
    logs = sorted(directory.glob("*.log"))
    for suffix in (".index", ".timeindex"):
        logs[1].with_suffix(suffix).unlink()
    with logs[-1].open("ab") as active:
        active.write(logs[-1].read_bytes()[:40])  # half a batch header: a torn write
    return directory, values


async def test_a_start_on_a_full_disk_rebuilds_indexes_in_memory_and_serves(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    directory, values = await crashed_partition(data_dir)
    disk = FullDisk(data_dir, monkeypatch)
    disk.armed = True
    with caplog.at_level(logging.ERROR, logger="minimq.storage.segment"):
        storage = await open_storage(data_dir)
    try:
        assert disk.refused >= 2, "recovery did try to write its rebuilt indexes"
        assert "SERVING FROM AN IN-MEMORY INDEX" in caplog.text
        assert not list(directory.glob("*.tmp")), "no partial temporary file keeps space"
        active = sorted(directory.glob("*.log"))[-1]
        for stale in (active.with_suffix(".index"), active.with_suffix(".timeindex")):
            # The old files could describe bytes the torn tail's truncation removed:
            # gone, so that no later open trusts them.
            assert not stale.exists(), f"{stale.name}: a stale index was left"
        log = storage.logs.partition("t", 0)
        assert [r.value for r in await log.read(0, 10_000, 1 << 30)] == values
        middle = len(values) // 2
        assert (await log.read(middle, 1, 1 << 20))[0].value == values[middle]

        with pytest.raises(StorageFull):  # the disk is still full: refused, not acknowledged
            await log.append(batch(999))
        disk.armed = False  # space comes back: produce resumes without a restart
        assert await log.append(batch(150)) == len(values)
        values.extend(r.value for r in batch(150) if r.value is not None)
    finally:
        await storage.close()

    # The clean close wrote the indexes kept in memory; they load as written.
    for segment in sorted(directory.glob("*.log")):
        size = segment.stat().st_size
        stored = SegmentIndex.load(
            segment.with_suffix(".index"), segment.with_suffix(".timeindex"), size
        )
        assert stored is not None, f"{segment.name}: index not written at close"
        if size > 8 * 1024:
            assert len(stored) > 0
    storage = await open_storage(data_dir)
    try:
        log = storage.logs.partition("t", 0)
        assert [r.value for r in await log.read(0, 10_000, 1 << 30)] == values
    finally:
        await storage.close()
