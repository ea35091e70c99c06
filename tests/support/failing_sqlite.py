"""SQLite connections whose COMMIT fails on demand, for offsets-store fault tests.

No privileges needed: :func:`install` wraps ``sqlite3.connect`` so that every
connection to a database named ``offsets.sqlite3`` is a
:class:`FaultyConnection`.  Before each ``COMMIT`` it asks ``fault()`` what to
do:

* ``"fsync"``: run the COMMIT, then raise SQLite's ``SQLITE_IOERR_FSYNC``.
  That is the worst case of a failed WAL fsync: SQLite wrote the transaction
  (here it is even durable), the caller is told it failed.  A store that then
  lets the "refused" commit take effect after a restart is wrong.
* ``"full"``: raise ``SQLITE_FULL`` without committing (a WAL write that ran
  out of space leaves no commit frame).
* anything else: commit normally.

``python -m`` children get the same through ``tests/support/offsets_faults``
(a ``sitecustomize`` directory put first on ``PYTHONPATH``), armed by a file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

SQLITE_IOERR_FSYNC = 1034  # SQLITE_IOERR | (4 << 8)

FaultChooser = Callable[[], str | None]


def _error(cls: type[sqlite3.Error], message: str, code: int, name: str) -> sqlite3.Error:
    error = cls(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    error.sqlite_errorname = name  # type: ignore[attr-defined]
    return error


class FaultyConnection(sqlite3.Connection):
    fault: FaultChooser = staticmethod(lambda: None)  # type: ignore[assignment]
    commits_failed = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if sql == "COMMIT":
            fault = type(self).fault()
            if fault == "fsync":
                super().execute(sql, *args)
                type(self).commits_failed += 1
                raise _error(
                    sqlite3.OperationalError,
                    "disk I/O error",
                    SQLITE_IOERR_FSYNC,
                    "SQLITE_IOERR_FSYNC",
                )
            if fault == "full":
                type(self).commits_failed += 1
                raise _error(
                    sqlite3.OperationalError,
                    "database or disk is full",
                    sqlite3.SQLITE_FULL,
                    "SQLITE_FULL",
                )
        return super().execute(sql, *args)


def install(fault: FaultChooser) -> Callable[[], None]:
    """Make offsets databases opened from now on use ``fault``; returns the undo."""
    original = sqlite3.connect
    FaultyConnection.fault = staticmethod(fault)  # type: ignore[assignment]
    FaultyConnection.commits_failed = 0

    def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if Path(str(database)).name == "offsets.sqlite3":
            kwargs["factory"] = FaultyConnection
        return original(database, *args, **kwargs)

    sqlite3.connect = connect  # type: ignore[assignment]

    def undo() -> None:
        sqlite3.connect = original

    return undo


def armed_by_file(path: Path, fault: str = "fsync") -> FaultChooser:
    """``fault`` for every COMMIT while ``path`` exists."""
    return lambda: fault if path.exists() else None
