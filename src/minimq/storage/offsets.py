"""Committed consumer-group offsets in SQLite (``DATA_DIR/offsets.sqlite3``).

The database runs in WAL mode with ``synchronous=FULL``: a transaction is
durable (its WAL frames fsynced) when ``COMMIT`` returns, so a ``commit`` that
returned survives kill -9 and power loss.  One table::

    offsets(group_id TEXT, topic TEXT, partition INTEGER, offset INTEGER,
            PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID

Concurrency: the connection lives in one dedicated thread (SQLite calls never
run on the event loop); writes are queued to it in order.  Reads
(``committed``, ``group_names``) are answered from an in-memory copy that the
loop thread updates only after the matching transaction committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from minimq.errors import InvalidRequest, StorageError

_T = TypeVar("_T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID
"""
UPSERT = (
    "INSERT INTO offsets (group_id, topic, partition, offset) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (group_id, topic, partition) DO UPDATE SET offset = excluded.offset"
)


class SqliteOffsetStore:
    """The ``OffsetStore`` of one data directory (see the module docstring)."""

    def __init__(self, executor: ThreadPoolExecutor, connection: sqlite3.Connection) -> None:
        self._executor = executor
        self._db = connection
        self._groups: dict[str, dict[tuple[str, int], int]] = {}

    @classmethod
    async def open(cls, path: Path) -> SqliteOffsetStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minimq-offsets")

        def connect() -> tuple[sqlite3.Connection, list[tuple[str, str, int, int]]]:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute(SCHEMA)
                rows = db.execute("SELECT group_id, topic, partition, offset FROM offsets")
                return db, rows.fetchall()
            except BaseException:
                db.close()
                raise

        try:
            db, rows = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except sqlite3.Error as exc:
            executor.shutdown()
            raise StorageError(f"{path}: cannot open the offsets database: {exc}") from exc
        store = cls(executor, db)
        for group, topic, partition, offset in rows:
            store._groups.setdefault(group, {})[(topic, partition)] = offset
        return store

    async def _run(self, work: Callable[[], _T]) -> _T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        except sqlite3.Error as exc:
            raise StorageError(f"offsets database: {exc}") from exc

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Run ``sql`` for every row in one durable transaction (offsets thread)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(sql, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def commit(self, group: str, offsets: Iterable[tuple[str, int, int]]) -> None:
        rows = [(group, topic, partition, offset) for topic, partition, offset in offsets]
        for _, topic, partition, offset in rows:
            if not isinstance(topic, str) or type(partition) is not int or type(offset) is not int:
                raise InvalidRequest(
                    "an offset commit is (topic: str, partition: int, offset: int)"
                )
            if partition < 0 or offset < 0:
                raise InvalidRequest("partitions and offsets are never negative")
        if not rows:
            return
        await self._run(lambda: self._write(UPSERT, rows))
        committed = self._groups.setdefault(group, {})
        for _, topic, partition, offset in rows:
            committed[(topic, partition)] = offset

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        return dict(self._groups.get(group, {}))

    def group_names(self) -> list[str]:
        return sorted(self._groups)

    async def delete_group(self, group: str) -> None:
        await self._run(lambda: self._write("DELETE FROM offsets WHERE group_id = ?", [(group,)]))
        self._groups.pop(group, None)

    async def delete_topic(self, topic: str) -> None:
        await self._run(lambda: self._write("DELETE FROM offsets WHERE topic = ?", [(topic,)]))
        for group in list(self._groups):
            committed = self._groups[group]
            for key in [key for key in committed if key[0] == topic]:
                del committed[key]
            if not committed:
                del self._groups[group]

    async def close(self) -> None:
        await self._run(self._db.close)
        self._executor.shutdown()
