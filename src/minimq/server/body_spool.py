"""Where a request body of undeclared length waits until it is complete.

A chunked body has no Content-Length, so the broker only learns it is too big
(413 past ``--max-body-bytes``) once that much has arrived, and until then it
has to keep what it got: held in memory, 16 clients streaming chunked 1 GiB
bodies made the broker hold up to 8 x 8 MiB at once, and its RSS grew by up
to 53 MiB before the last 413. So, as web servers do with large bodies, a
:class:`BodySpool` keeps the first :data:`MEMORY_BYTES` in memory and moves
the rest to an anonymous temporary file (unlinked on creation: nothing is
left behind, even after ``kill -9``), which is read back only if the body
completes within the limit. Bodies with a declared length are never
spooled (their spool's memory part is the whole limit): their size is known
to be within the limit before a byte is read.

The file writes are small (one received piece, at most the transport's read
buffer) and go to the page cache, so they run on the event loop; a body that
grows past :data:`MEMORY_BYTES` is rare and already slow by nature.

Concurrency contract: one spool per request, used by its handler's task.
"""

from __future__ import annotations

import logging
import tempfile
from typing import IO

log = logging.getLogger("minimq.server")

MEMORY_BYTES = 1024 * 1024


class BodySpool:
    """Body pieces in arrival order: in memory up to ``memory_bytes``, then in a file."""

    def __init__(self, memory_bytes: int = MEMORY_BYTES) -> None:
        self._memory_bytes = memory_bytes
        self._pieces: list[bytes] = []
        self._size = 0
        self._file: IO[bytes] | None = None

    @property
    def size(self) -> int:
        return self._size

    def append(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._file is None and self._size > self._memory_bytes:
            self._file = _temporary_file()
            if self._file is not None:
                self._file.writelines(self._pieces)
                self._pieces = []
        if self._file is not None:
            self._file.write(piece)
        else:
            self._pieces.append(piece)

    def getvalue(self) -> bytes:
        """The whole body."""
        if self._file is not None:
            self._file.seek(0)
            return self._file.read()
        return self._pieces[0] if len(self._pieces) == 1 else b"".join(self._pieces)

    def close(self) -> None:
        self._pieces = []
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> BodySpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _temporary_file() -> IO[bytes] | None:
    try:
        return tempfile.TemporaryFile()
    except OSError as exc:
        # No usable temp directory: keep the body in memory, as before spooling.
        log.warning("cannot spool a large request body to a temporary file: %s", exc)
        return None
