"""Committed consumer-group offsets in SQLite (``DATA_DIR/offsets.sqlite3``).

The database runs in WAL mode with ``synchronous=FULL``: a transaction is
durable (its WAL frames fsynced) when ``COMMIT`` returns, so a ``commit`` that
returned survives kill -9 and power loss.  One table, schema version 2
(``PRAGMA user_version``)::

    offsets(group_id TEXT, topic TEXT, partition INTEGER, offset INTEGER,
            topic_id TEXT,            -- the topic incarnation the offset is for
            txn INTEGER,              -- random id of the transaction that wrote it
            previous_offset INTEGER,  -- the offset before that transaction, if any
            metadata TEXT,            -- the commit's metadata string (Kafka), NULL if none
            previous_metadata TEXT,   -- the metadata before that transaction
            PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID

Commit metadata.  A Kafka OffsetCommit carries a free-form string per
partition that OffsetFetch must return unchanged; it is stored beside its
offset, replaced by every commit of that partition (a commit without one
stores NULL, read back as ""), and put back with the offset when a refused
commit is undone.  Version 2 added the two metadata columns; older databases
get them at open (``ALTER TABLE ... ADD COLUMN``, NULL in every row), in the
same transaction as every other repair.

Topic incarnations.  Every row names the ``topic_id`` it was committed
against; a commit for a topic that is gone, or has been re-created since (a
new id), is refused.  Deleting a topic deletes its rows, but a crash can cut
that short: the topic directory is gone (renamed into ``trash/``), its rows
are not.  So ``open`` removes every row whose ``(topic, topic_id)`` is not a
topic of the data directory, and a topic created again under the old name
never inherits a commit.  Topics opened without an id (``topic.json`` from
before topic ids, or rebuilt) *adopt* the rows of their name; a database from
before topic ids (``user_version`` 0, no ``topic_id``/``txn``/
``previous_offset``) gets the missing columns in the same transaction.

Refused commits never come back.  A ``COMMIT`` whose fsync (or write) failed
may still have reached the WAL: SQLite wrote the frames and only their fsync
failed, so after kill -9 the WAL replay applies the commit the broker refused
(a group fetch with ``commit=true`` hands nothing out when its commit fails,
so its records would then be skipped).  Therefore, before the error is
returned, that transaction's id goes into ``DATA_DIR/offsets.refused`` (a
64-byte file made at open and overwritten in place, so that writing it needs
no free space), and the store refuses every later write (``OffsetsFailed``)
until it is reopened.  The open puts ``previous_offset`` back on every row
that transaction wrote and removes the rows it created, then zeroes the file.
Every consumer thus starts after a restart from its last commit that
returned success.  A full disk (``SQLITE_FULL``) is not such a failure: a WAL
write that ran out of space leaves no commit frame, so the commit is refused
with ``StorageFull`` and the store stays in service.

``offsets.refused`` holds 64 zero bytes, or ``minimq-refused-txn <id>\n``
followed by zero bytes; anything else stops the open (``CorruptLog``).

Concurrency: the connection lives in one dedicated thread (SQLite calls never
run on the event loop); writes are queued to it in order, so once one failed
every write queued behind it is refused without touching the database.
Reads (``committed``, ``metadata``, ``group_names``) are answered from an in-memory copy
that the loop thread updates only after the matching transaction committed.
It holds only offsets of existing topic incarnations (the open loads no
others, a deleted topic's go at once, a commit that finishes after its topic
was deleted leaves nothing) and notes each group's topic ids, so a read
checks one id per topic, not one per offset (which cost a group with 1,000
partitions half a millisecond per read).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from minimq.errors import (
    CorruptLog,
    InvalidRequest,
    OffsetsFailed,
    StorageError,
    StorageFull,
    TopicNotFound,
)
from minimq.storage.files import pwrite_all

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# group_id, topic, partition, offset, topic_id, metadata: one row as the open reads it.
_Row = tuple[str, str, int, int, str | None, str | None]

SCHEMA_VERSION: Final = 2
REFUSED_FILE: Final = "offsets.refused"
REFUSED_SIZE: Final = 64
_REFUSED_RECORD = re.compile(rb"minimq-refused-txn ([0-9]{1,19})\n\x00*")
_NOTHING_REFUSED = bytes(REFUSED_SIZE)

CREATE_TABLE = """
CREATE TABLE offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    topic_id TEXT,
    txn INTEGER,
    previous_offset INTEGER,
    metadata TEXT,
    previous_metadata TEXT,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID
"""
# Columns added by schema versions 1 and 2, in the order of CREATE_TABLE.
_ADDED_COLUMNS = (
    ("topic_id", "TEXT"),
    ("txn", "INTEGER"),
    ("previous_offset", "INTEGER"),
    ("metadata", "TEXT"),
    ("previous_metadata", "TEXT"),
)
# previous_offset/previous_metadata: what the row held before this transaction,
# for the same topic incarnation only (a row of another incarnation is not
# worth restoring).
UPSERT = """
INSERT INTO offsets
    (group_id, topic, partition, offset, topic_id, txn, previous_offset, metadata,
     previous_metadata)
VALUES (?, ?, ?, ?, ?, ?, NULL, ?, NULL)
ON CONFLICT (group_id, topic, partition) DO UPDATE SET
    previous_offset = CASE
        WHEN offsets.txn = excluded.txn THEN offsets.previous_offset
        WHEN offsets.topic_id = excluded.topic_id THEN offsets.offset
        ELSE NULL
    END,
    previous_metadata = CASE
        WHEN offsets.txn = excluded.txn THEN offsets.previous_metadata
        WHEN offsets.topic_id = excluded.topic_id THEN offsets.metadata
        ELSE NULL
    END,
    offset = excluded.offset,
    metadata = excluded.metadata,
    topic_id = excluded.topic_id,
    txn = excluded.txn
"""


def _new_txn() -> int:
    """A transaction id: random, so no run of the broker reuses another's (63 bits)."""
    return secrets.randbits(63)


@dataclass(frozen=True, slots=True)
class OpenReport:
    """What the open repaired: reverted refused commits, adopted and removed rows."""

    reverted: int = 0
    adopted: int = 0
    removed: int = 0


class SqliteOffsetStore:
    """The ``OffsetStore`` of one data directory (see the module docstring)."""

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        connection: sqlite3.Connection,
        refused_path: Path,
        live_topic_id: Callable[[str], str | None],
    ) -> None:
        self._executor = executor
        self._db = connection
        self._refused_path = refused_path
        self._live_topic_id = live_topic_id
        # Committed transactions only, live topic incarnations only.
        self._groups: dict[str, _GroupOffsets] = {}
        # Set on the offsets thread by the first write that failed; read on both.
        self._failure: OffsetsFailed | None = None
        self.report = OpenReport()

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        topic_ids: Mapping[str, str] | None = None,
        adopt: Collection[str] = (),
        live_topic_id: Callable[[str], str | None] | None = None,
    ) -> SqliteOffsetStore:
        """Open (and repair, see the module docstring) the database at ``path``.

        ``topic_ids`` are the data directory's topics and their ids; ``adopt``
        the topics whose rows are theirs whatever id they carry;
        ``live_topic_id`` tells the current id of a topic later on (default:
        ``topic_ids`` as they are now).
        """
        live = dict(topic_ids or {})
        refused_path = path.with_name(REFUSED_FILE)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minimq-offsets")

        def connect() -> tuple[sqlite3.Connection, list[_Row], OpenReport]:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                refused = _read_refused(refused_path)
                db.execute("BEGIN IMMEDIATE")
                try:
                    _migrate(db)
                    reverted = 0 if refused is None else _revert(db, refused)
                    adopted = _adopt(db, live, adopt)
                    removed = _remove_dead_incarnations(db, live)
                    rows = db.execute(
                        "SELECT group_id, topic, partition, offset, topic_id, metadata FROM offsets"
                    ).fetchall()
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                # Only once the repairs are durable: until then the next open must redo them.
                _prepare_refused_file(refused_path, clear=refused is not None)
                return db, rows, OpenReport(reverted, adopted, removed)
            except BaseException:
                db.close()
                raise

        try:
            db, rows, report = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except sqlite3.Error as exc:
            executor.shutdown()
            raise StorageError(f"{path}: cannot open the offsets database: {exc}") from exc
        except BaseException:
            executor.shutdown()
            raise
        store = cls(executor, db, refused_path, live_topic_id or live.get)
        store.report = report
        for group, topic, partition, offset, topic_id, metadata in rows:
            assert topic_id is not None  # the open removed every row without a live topic
            store._group(group).store(topic, topic_id, partition, offset, metadata)
        _log_report(path, report)
        return store

    @property
    def failed(self) -> bool:
        """True once a write failed: every commit is refused until the store is reopened."""
        return self._failure is not None

    def _refusal(self) -> OffsetsFailed:
        assert self._failure is not None
        return OffsetsFailed(self._failure.message)

    async def _run(self, work: Callable[[], _T]) -> _T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        except sqlite3.Error as exc:
            raise StorageError(f"offsets database: {exc}") from exc

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]], txn: int) -> None:
        """Run ``sql`` for every row in one durable transaction (offsets thread).

        After a failure whose outcome SQLite cannot tell (anything but a full
        disk) the store leaves service; see "Refused commits" in the module docstring.
        """
        if self._failure is not None:
            raise self._refusal()
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, rows)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_FULL:
                raise StorageFull(f"offsets database: no space left on device ({exc})") from exc
            raise self._leave_service(txn, exc) from exc

    def _leave_service(self, txn: int, cause: sqlite3.Error) -> OffsetsFailed:
        """Record ``txn`` as refused, durably if the disk lets us; refuse writes from now on."""
        record = (b"minimq-refused-txn %d\n" % txn).ljust(REFUSED_SIZE, b"\0")
        recorded = False
        try:
            fd = os.open(self._refused_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                pwrite_all(fd, record, 0)
                recorded = True  # in the page cache: a process crash keeps it
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if not recorded:
                log.critical(
                    "%s: cannot record the refused commit (%s): after a crash it may take "
                    "effect after all",
                    self._refused_path,
                    exc,
                )
        self._failure = OffsetsFailed(
            f"offsets database: a write failed ({cause}); commits are refused until the "
            "broker restarts, and the failed one is undone then"
        )
        log.error("%s", self._failure.message)
        return self._refusal()

    async def commit(
        self,
        group: str,
        offsets: Iterable[tuple[str, int, int]],
        topic_ids: Mapping[str, str] | None = None,
        metadata: Mapping[tuple[str, int], str] | None = None,
    ) -> None:
        entries = list(offsets)
        notes = dict(metadata or {})
        for topic, partition, offset in entries:
            if not isinstance(topic, str) or type(partition) is not int or type(offset) is not int:
                raise InvalidRequest(
                    "an offset commit is (topic: str, partition: int, offset: int)"
                )
            if partition < 0 or offset < 0:
                raise InvalidRequest("partitions and offsets are never negative")
        if not all(isinstance(note, str) for note in notes.values()):
            raise InvalidRequest("commit metadata is a string per (topic, partition)")
        if not entries:
            return
        incarnations: dict[str, str] = {}
        for topic in {topic for topic, _, _ in entries}:
            live = self._live_topic_id(topic)
            expected = live if topic_ids is None else topic_ids.get(topic)
            if live is None or live != expected:
                raise TopicNotFound(
                    f"topic {topic!r} was deleted (or deleted and created again); "
                    "nothing was committed"
                )
            incarnations[topic] = live
        if self._failure is not None:
            raise self._refusal()
        txn = _new_txn()
        rows = [
            (group, t, p, o, incarnations[t], txn, notes.get((t, p)) or None) for t, p, o in entries
        ]
        await self._run(lambda: self._write(UPSERT, rows, txn))
        committed = self._group(group)
        for topic, partition, offset in entries:
            # A topic deleted while the transaction ran keeps nothing in memory
            # (the next open removes its rows).
            if self._live_topic_id(topic) == incarnations[topic]:
                note = notes.get((topic, partition))
                committed.store(topic, incarnations[topic], partition, offset, note)
        if not committed.offsets:
            del self._groups[group]

    def _group(self, group: str) -> _GroupOffsets:
        found = self._groups.get(group)
        if found is None:
            found = self._groups[group] = _GroupOffsets()
        return found

    async def committed(self, group: str) -> dict[tuple[str, int], int]:
        found = self._groups.get(group)
        return {} if found is None else found.live(self._live_topic_id)

    async def metadata(self, group: str) -> dict[tuple[str, int], str]:
        found = self._groups.get(group)
        return {} if found is None else found.live_metadata(self._live_topic_id)

    async def group_names(self) -> list[str]:
        return sorted(g for g, found in self._groups.items() if found.live(self._live_topic_id))

    async def delete_group(self, group: str) -> None:
        if self._failure is not None:
            raise self._refusal()
        txn = _new_txn()
        await self._run(
            lambda: self._write("DELETE FROM offsets WHERE group_id = ?", [(group,)], txn)
        )
        self._groups.pop(group, None)

    def _forget_topic(self, topic: str) -> None:
        for group in list(self._groups):
            if not self._groups[group].forget(topic):
                del self._groups[group]

    async def delete_topic(self, topic: str) -> None:
        self._forget_topic(topic)
        if self._failure is not None:
            return  # the next open removes the rows
        txn = _new_txn()
        try:
            await self._run(
                lambda: self._write("DELETE FROM offsets WHERE topic = ?", [(topic,)], txn)
            )
        except StorageError as exc:
            log.warning(
                "topic %s: its committed offsets stay on disk (%s); the next start removes them",
                topic,
                exc.message,
            )

    async def close(self) -> None:
        try:
            await self._run(self._db.close)
        except StorageError as exc:
            log.warning("offsets database: %s", exc.message)
        finally:
            self._executor.shutdown()


class _GroupOffsets:
    """One group's committed offsets in memory, and the topic id they belong to per topic.

    ``notes`` holds the non-empty commit metadata only (most commits have none).
    """

    __slots__ = ("notes", "offsets", "topic_ids")

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}
        self.notes: dict[tuple[str, int], str] = {}
        self.topic_ids: dict[str, str] = {}

    def store(
        self, topic: str, topic_id: str, partition: int, offset: int, note: str | None = None
    ) -> None:
        if self.topic_ids.setdefault(topic, topic_id) != topic_id:
            self.forget(topic)  # an older incarnation's offsets: they go
            self.topic_ids[topic] = topic_id
        self.offsets[(topic, partition)] = offset
        if note:
            self.notes[(topic, partition)] = note
        else:
            self.notes.pop((topic, partition), None)

    def forget(self, topic: str) -> bool:
        """Drop ``topic``'s offsets; False when none are left."""
        if self.topic_ids.pop(topic, None) is not None:
            for key in [key for key in self.offsets if key[0] == topic]:
                del self.offsets[key]
                self.notes.pop(key, None)
        return bool(self.offsets)

    def live_metadata(
        self, live_topic_id: Callable[[str], str | None]
    ) -> dict[tuple[str, int], str]:
        return {
            key: note
            for key, note in self.notes.items()
            if live_topic_id(key[0]) == self.topic_ids.get(key[0])
        }

    def live(self, live_topic_id: Callable[[str], str | None]) -> dict[tuple[str, int], int]:
        """The offsets of topics whose current id is theirs (one check per topic)."""
        gone = [
            topic for topic, topic_id in self.topic_ids.items() if live_topic_id(topic) != topic_id
        ]
        if not gone:
            return dict(self.offsets)
        return {key: offset for key, offset in self.offsets.items() if key[0] not in gone}


# ------------------------------------------------------------------ opening


def _read_refused(path: Path) -> int | None:
    """The id of the transaction recorded as refused, or None (blocking)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if not raw.strip(b"\0"):
        return None
    match = _REFUSED_RECORD.fullmatch(raw)
    if match is None:
        raise CorruptLog(
            f"{path}: unreadable ({raw[:REFUSED_SIZE]!r}); it names a commit that was "
            "refused and must be undone, so the broker does not guess (see docs/storage-format.md)"
        )
    return int(match.group(1))


def _prepare_refused_file(path: Path, *, clear: bool) -> None:
    """Make ``offsets.refused`` exist with its 64 bytes, zeroed (blocking).

    Made now so that recording a refusal later needs no new space; a file
    that cannot be made now (a full disk) is made when needed.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.warning("%s: cannot create it yet (%s)", path, exc)
        return
    try:
        if clear or os.fstat(fd).st_size != REFUSED_SIZE:
            pwrite_all(fd, _NOTHING_REFUSED, 0)
            os.ftruncate(fd, REFUSED_SIZE)
            os.fsync(fd)
    except OSError as exc:
        # Harmless: undoing a refused transaction again changes nothing.
        log.warning("%s: cannot reset it (%s)", path, exc)
    finally:
        os.close(fd)


def _migrate(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the offsets database has schema version {version}, newer than this "
            f"MiniMQ's ({SCHEMA_VERSION}); run a newer MiniMQ"
        )
    columns = {row[1] for row in db.execute("PRAGMA table_info(offsets)")}
    if not columns:
        db.execute(CREATE_TABLE)
    else:
        for name, declaration in _ADDED_COLUMNS:
            if name not in columns:
                db.execute(f"ALTER TABLE offsets ADD COLUMN {name} {declaration}")
    if version != SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _revert(db: sqlite3.Connection, txn: int) -> int:
    created = db.execute(
        "DELETE FROM offsets WHERE txn = ? AND previous_offset IS NULL", (txn,)
    ).rowcount
    updated = db.execute(
        "UPDATE offsets SET offset = previous_offset, metadata = previous_metadata,"
        " previous_offset = NULL, previous_metadata = NULL, txn = NULL WHERE txn = ?",
        (txn,),
    ).rowcount
    return int(created + updated)


def _adopt(db: sqlite3.Connection, live: Mapping[str, str], adopt: Collection[str]) -> int:
    adopted = 0
    for topic in adopt:
        adopted += db.execute(
            "UPDATE offsets SET topic_id = ? WHERE topic = ? AND topic_id IS NOT ?",
            (live[topic], topic, live[topic]),
        ).rowcount
    return adopted


def _remove_dead_incarnations(db: sqlite3.Connection, live: Mapping[str, str]) -> int:
    removed = 0
    for topic, topic_id in db.execute("SELECT DISTINCT topic, topic_id FROM offsets").fetchall():
        if topic_id is None or live.get(topic) != topic_id:
            removed += db.execute(
                "DELETE FROM offsets WHERE topic = ? AND topic_id IS ?", (topic, topic_id)
            ).rowcount
    return removed


def _log_report(path: Path, report: OpenReport) -> None:
    if report.reverted:
        log.warning(
            "%s: undid %d committed offset(s) of a commit that was refused before the last "
            "stop (its fsync had failed)",
            path,
            report.reverted,
        )
    if report.adopted:
        log.info("%s: %d committed offset(s) given their topic's id", path, report.adopted)
    if report.removed:
        log.warning(
            "%s: removed %d committed offset(s) of deleted topics (a deletion cut short)",
            path,
            report.removed,
        )
