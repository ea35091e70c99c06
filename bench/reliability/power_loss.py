"""Power loss, simulated without root: keep only what was fsynced, then recover.

:class:`FsyncRecorder` wraps ``os.fsync`` for one process.  Every fsync of a
file under the data directory records the file's content at that moment (by
inode); every fsync of a directory records its entries (name -> inode).  At
:meth:`FsyncRecorder.cut` the recorder freezes that durable state, and
:func:`build_image` materializes "the disk after the power came back":

* a directory holds exactly the entries it had at its last fsync (entries
  created, renamed or removed later are undone; a directory never fsynced
  since it was created is empty);
* a file holds the content of its last fsync (a file never fsynced is empty);
* with ``torn=True`` a file whose current content extends its fsynced content
  also keeps a random prefix of the unsynced tail — a torn write.

This is stricter than ext4 or XFS in their default modes (which journal
directory entries), so anything that survives it survives them.  SQLite's
offsets database does its own fsyncs in C and is outside this model; the
crash loop covers it.

:func:`run_power_loss_cycles` drives the storage engine in-process: concurrent
writers append uniquely identified records to a topic, the power is cut at a
random moment, the image is opened (recovery runs) and judged:

* every partition is a prefix of what was written;
* ``fsync=always``: every append acknowledged before the cut is there, at its
  acknowledged offset;
* ``interval:T``: every missing acknowledged append was acknowledged within
  the last T ms before the cut (plus a stated scheduling slack).

Each cycle continues on the previous cycle's recovered image.

    python -m bench.reliability.power_loss [--cycles 50] [--fsync always|interval:200|never]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.reliability.ledger import Ledger, StoredRecord, Verdict

from minimq.core.records import NewRecord
from minimq.core.topic_config import FsyncPolicy, TopicConfig
from minimq.errors import TopicAlreadyExists
from minimq.storage import open_storage
from minimq.storage.engine import DiskStorage

TOPIC = "power"
PARTITIONS = 2
WRITERS = 4
CONFIG = TopicConfig(partitions=PARTITIONS, segment_bytes=8 * 1024)

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

DirEntries = dict[str, tuple[int, bool]]  # name -> (inode, is a directory)


@dataclass(frozen=True)
class DurableState:
    """What a power cut leaves: fsynced file contents, fsynced directory entries."""

    root_inode: int
    files: dict[int, bytes]
    dirs: dict[int, DirEntries]
    current: dict[int, bytes]  # every file's content at the cut, for torn writes


def _entries(path: str | Path) -> DirEntries:
    with os.scandir(path) as scan:
        return {e.name: (e.inode(), e.is_dir(follow_symlinks=False)) for e in scan}


class FsyncRecorder:
    """Records the durable state of every file and directory under ``root``.

    Install it with ``with recorder.installed():``; ``os.fsync`` is replaced
    process-wide for that time.  Whatever exists under ``root`` when it is
    installed counts as durable.  Thread-safe: fsyncs from worker threads
    record under a lock, after the real fsync returned and before the caller
    sees it return, so an acknowledgement never precedes its record.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()
        self._files: dict[int, bytes] = {}
        self._dirs: dict[int, DirEntries] = {}
        self._real_fsync: Callable[[FileDescriptorLike], None] = os.fsync
        self.fsyncs = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[FsyncRecorder]:
        for directory, _subdirs, files in os.walk(self.root):
            self._dirs[os.stat(directory).st_ino] = _entries(directory)
            for name in files:
                path = os.path.join(directory, name)
                self._files[os.stat(path).st_ino] = Path(path).read_bytes()
        self._real_fsync = os.fsync
        os.fsync = self._fsync
        try:
            yield self
        finally:
            os.fsync = self._real_fsync

    def _fsync(self, fd: FileDescriptorLike) -> None:
        self._real_fsync(fd)
        if not isinstance(fd, int):
            fd = fd.fileno()
        proc_path = f"/proc/self/fd/{fd}"
        if not os.readlink(proc_path).startswith(str(self.root)):
            return
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            entries = _entries(proc_path)
            with self._lock:
                self._dirs[info.st_ino] = entries
                self.fsyncs += 1
        else:
            with open(proc_path, "rb") as handle:  # the fd itself may be write-only
                content = handle.read()
            with self._lock:
                self._files[info.st_ino] = content
                self.fsyncs += 1

    def cut(self) -> DurableState:
        """Freeze the durable state now (the moment the power goes)."""
        with self._lock:
            files = dict(self._files)
            dirs = {inode: dict(entries) for inode, entries in self._dirs.items()}
        current: dict[int, bytes] = {}
        for directory, _subdirs, names in os.walk(self.root):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    path = Path(directory, name)
                    current[path.stat().st_ino] = path.read_bytes()
        return DurableState(self.root.stat().st_ino, files, dirs, current)


def build_image(state: DurableState, target: Path, rng: random.Random, *, torn: bool) -> None:
    """Write the disk as it would be after the power came back into ``target`` (new dir)."""

    def materialize(inode: int, path: Path) -> None:
        path.mkdir()
        for name, (child, is_dir) in state.dirs.get(inode, {}).items():
            if is_dir:
                materialize(child, path / name)
                continue
            content = state.files.get(child, b"")
            now = state.current.get(child, b"")
            if torn and len(now) > len(content) and now.startswith(content):
                content = now[: rng.randint(len(content), len(now))]
            (path / name).write_bytes(content)

    materialize(state.root_inode, target)


# --------------------------------------------------------------------- the scenario


@dataclass
class PowerLossResult:
    policy: str
    cycles: int = 0
    acknowledged: int = 0
    lost_acknowledged: int = 0
    max_lost_age_ms: float = 0.0
    recovered_records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"fsync={self.policy}: {self.cycles} power cuts, {self.acknowledged} appends "
            f"acknowledged, {self.lost_acknowledged} of them lost (oldest lost was acknowledged "
            f"{self.max_lost_age_ms:.0f} ms before the cut), {self.recovered_records} records "
            f"after the last recovery; {'OK' if self.ok else 'FAILED'}"
            + "".join(f"\n  {problem}" for problem in self.problems[:20])
        )


@dataclass
class _Append:
    ids: list[str]
    partition: int
    acked_at: float | None = None
    base_offset: int | None = None


async def _write_until_cut(
    storage: DiskStorage,
    recorder: FsyncRecorder,
    rng: random.Random,
    cycle: int,
    cut_after_s: float,
) -> tuple[DurableState, float, list[_Append]]:
    """Append from paced concurrent writers; cut the power ``cut_after_s`` seconds in."""
    appends: list[_Append] = []
    cut: tuple[DurableState, float] | None = None
    sequence = itertools.count()

    def cut_power() -> None:
        # Runs on the loop thread between two callbacks: no acknowledgement slips in.
        nonlocal cut
        cut = (recorder.cut(), time.monotonic())

    asyncio.get_running_loop().call_later(cut_after_s, cut_power)

    async def writer(number: int) -> None:
        while cut is None:
            partition = rng.randrange(PARTITIONS)
            ids = [f"c{cycle}-w{number}-{next(sequence)}" for _ in range(rng.randint(1, 3))]
            attempt = _Append(ids, partition)
            appends.append(attempt)
            log = storage.logs.partition(TOPIC, partition)
            base = await log.append([NewRecord(None, i.encode()) for i in ids])
            if cut is None:
                attempt.acked_at, attempt.base_offset = time.monotonic(), base
            # Paced, so that acknowledgements spread over the whole cycle.
            await asyncio.sleep(rng.uniform(0, 0.01))

    await asyncio.gather(*(writer(number) for number in range(WRITERS)))
    assert cut is not None
    return cut[0], cut[1], appends


async def _read_partitions(storage: DiskStorage) -> dict[int, list[StoredRecord]]:
    out: dict[int, list[StoredRecord]] = {}
    for partition in range(PARTITIONS):
        log = storage.logs.partition(TOPIC, partition)
        records = await log.read(log.start_offset, 1 << 30, 1 << 40)
        out[partition] = [(r.offset, (r.value or b"").decode()) for r in records]
    return out


async def run_power_loss_cycles(
    data_dir: Path, policy: FsyncPolicy, cycles: int, *, seed: int = 0, slack_ms: float = 1000.0
) -> PowerLossResult:
    """Run ``cycles`` power cuts on ``data_dir`` (see the module docstring)."""
    rng = random.Random(seed)
    result = PowerLossResult(str(policy))
    ledger = Ledger()  # used under ``always``, where no acknowledged append may ever vanish
    for cycle in range(cycles):
        recorder = FsyncRecorder(data_dir)
        with recorder.installed():
            storage = await open_storage(data_dir, policy)
            with contextlib.suppress(TopicAlreadyExists):
                await storage.logs.create_topic(TOPIC, CONFIG)
            state, cut_at, appends = await _write_until_cut(
                storage, recorder, rng, cycle, rng.uniform(0.1, 1.0)
            )
            written = await _read_partitions(storage)
            await storage.close()
        image = data_dir.with_name(data_dir.name + ".image")
        build_image(state, image, rng, torn=rng.random() < 0.5)
        shutil.rmtree(data_dir)
        image.rename(data_dir)

        storage = await open_storage(data_dir, policy)
        try:
            recovered = await _read_partitions(storage)
        finally:
            await storage.close()
        result.cycles += 1
        result.recovered_records = sum(len(records) for records in recovered.values())
        for partition, records in recovered.items():
            if records != written[partition][: len(records)]:
                result.problems.append(
                    f"cycle {cycle}: partition {partition} is not a prefix of what was written"
                )
        stored = {
            (p, offset): value for p, records in recovered.items() for offset, value in records
        }
        for attempt in appends:
            ledger.sent(attempt.ids)
            if attempt.base_offset is None:
                ledger.unknown(attempt.ids)
                continue
            result.acknowledged += 1
            positions = [
                (attempt.partition, attempt.base_offset + i) for i in range(len(attempt.ids))
            ]
            if all(stored.get(p) == i for p, i in zip(positions, attempt.ids, strict=True)):
                if policy.mode == "always":
                    ledger.acknowledged(attempt.ids, positions)
                continue
            result.lost_acknowledged += 1
            assert attempt.acked_at is not None
            age_ms = (cut_at - attempt.acked_at) * 1000
            result.max_lost_age_ms = max(result.max_lost_age_ms, age_ms)
            if policy.mode == "always":
                result.problems.append(f"cycle {cycle}: acknowledged {attempt.ids} lost")
            elif policy.mode == "interval" and age_ms > policy.interval_ms + slack_ms:
                result.problems.append(
                    f"cycle {cycle}: {attempt.ids} lost though acknowledged {age_ms:.0f} ms "
                    f"before the cut (interval {policy.interval_ms} ms + {slack_ms:.0f} ms slack)"
                )
        if policy.mode == "always":
            verdict: Verdict = ledger.check_log(recovered)
            result.problems += [f"cycle {cycle}: {problem}" for problem in verdict.problems]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--fsync", default="always")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slack-ms", type=float, default=500.0)
    args = parser.parse_args(argv)
    policy = FsyncPolicy.parse(args.fsync)
    with tempfile.TemporaryDirectory(prefix="minimq-power-loss-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        result = asyncio.run(
            run_power_loss_cycles(
                data_dir, policy, args.cycles, seed=args.seed, slack_ms=args.slack_ms
            )
        )
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
