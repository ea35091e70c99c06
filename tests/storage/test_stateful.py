"""The disk log against an in-memory model: append, read, restart, torn-tail crash, retention."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from minimq.core.records import NewRecord
from minimq.core.topic_config import TopicConfig
from minimq.recordbatch.frames import encode_batch
from minimq.storage import open_storage
from minimq.storage.engine import DiskStorage
from minimq.storage.partition import DiskPartitionLog

CONFIG = TopicConfig(segment_bytes=1024, retention_bytes=2048)

new_records = st.lists(
    st.builds(
        NewRecord,
        key=st.none() | st.binary(max_size=8),
        value=st.none() | st.binary(max_size=120),
        headers=st.lists(st.tuples(st.text(max_size=3), st.binary(max_size=3)), max_size=2).map(
            tuple
        ),
        timestamp=st.none() | st.integers(min_value=0, max_value=2**40),
    ),
    min_size=1,
    max_size=6,
)


class DiskLogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.root = Path(tempfile.mkdtemp(prefix="minimq-stateful-"))
        self.storage: DiskStorage = self.run(open_storage(self.root))
        self.run(self.storage.logs.create_topic("m", CONFIG))
        self.model: list[tuple[bytes | None, bytes | None, tuple[Any, ...]]] = []
        self.timestamps: list[int] = []
        self.start = 0

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    @property
    def log(self) -> DiskPartitionLog:
        return self.storage.logs.partition("m", 0)

    @rule(batch=new_records)
    def append(self, batch: list[NewRecord]) -> None:
        base = self.run(self.log.append(batch))
        assert base == len(self.model)
        self.model.extend((r.key, r.value, r.headers) for r in batch)
        stored = self.run(self.log.read(base, len(batch), 1 << 20))
        self.timestamps.extend(r.timestamp for r in stored)
        for record, new in zip(stored, batch, strict=True):
            assert new.timestamp is None or record.timestamp == new.timestamp

    @rule(data=st.data(), max_records=st.integers(1, 50), max_bytes=st.integers(1, 5000))
    def read(self, data: st.DataObject, max_records: int, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.start, len(self.model)))
        got = self.run(self.log.read(offset, max_records, max_bytes))
        expected = self.model[offset : offset + max_records]
        assert [(r.key, r.value, r.headers) for r in got] == expected[: len(got)]
        assert [r.offset for r in got] == list(range(offset, offset + len(got)))
        assert [r.timestamp for r in got] == self.timestamps[offset : offset + len(got)]
        if offset < len(self.model):
            assert got, "at least one record"

    @rule()
    def restart(self) -> None:
        self.run(self.storage.close())
        self.storage = self.run(open_storage(self.root))

    @rule(batch=new_records, keep=st.floats(0, 0.999))
    def crash_with_torn_tail(self, batch: list[NewRecord], keep: float) -> None:
        """Stop uncleanly while an unacknowledged batch was half written."""
        self.run(self.storage.close())
        (self.root / ".clean-shutdown").unlink()
        frame = encode_batch(len(self.model), batch, now_ms=0)
        active = sorted((self.root / "topics" / "m" / "0").glob("*.log"))[-1]
        with active.open("ab") as handle:
            handle.write(frame[: int(len(frame) * keep)])
        self.storage = self.run(open_storage(self.root))

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def retention(self) -> None:
        self.run(self.storage.logs.apply_retention())
        assert self.log.start_offset >= self.start
        self.start = self.log.start_offset

    @invariant()
    def offsets_match(self) -> None:
        assert self.log.start_offset == self.start
        assert self.log.end_offset == len(self.model)

    def teardown(self) -> None:
        self.run(self.storage.close())
        self.loop.close()
        shutil.rmtree(self.root)


TestDiskLog = DiskLogMachine.TestCase
TestDiskLog.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
