"""Producer ids for idempotent Kafka producers, unique across restarts.

``DATA_DIR/producer-ids`` holds one decimal number: the first id not yet
reserved.  Ids are reserved in blocks of :data:`BLOCK_SIZE`: the file is
replaced (atomically: tmp file, fsync, rename, fsync the directory) with the
end of the new block *before* any id of it is handed out, so a crash at any
point can only skip ids, never hand one out twice.  Ids start at 1000 so
that they never look like Kafka's special values (-1 means "none").

Concurrency: event-loop thread; the file work runs in a worker thread under
one lock, so two allocations never reserve the same block.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

from minimq.errors import CorruptLog
from minimq.storage.files import atomic_write, storage_error

PRODUCER_IDS_FILE: Final = "producer-ids"
BLOCK_SIZE: Final = 1000
FIRST_ID: Final = 1000
MAX_ID: Final = 2**63 - 1


class DiskProducerIdStore:
    """The ``ProducerIdStore`` of one data directory (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / PRODUCER_IDS_FILE
        self._next = 0
        self._reserved_end = 0  # ids below this are reserved on disk
        self._lock = asyncio.Lock()

    async def allocate(self) -> int:
        async with self._lock:
            if self._next >= self._reserved_end:
                loop = asyncio.get_running_loop()
                self._next, self._reserved_end = await loop.run_in_executor(None, self._reserve)
            allocated = self._next
            self._next += 1
            return allocated

    def _reserve(self) -> tuple[int, int]:
        """Reserve the next block on disk (blocking); return its (first, end)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            first = FIRST_ID
        except OSError as exc:
            raise storage_error(exc, f"read {self.path}", log_failed=False) from exc
        else:
            text = raw.decode("ascii", "replace").strip()
            if not text.isdigit() or not FIRST_ID <= int(text) <= MAX_ID - BLOCK_SIZE:
                raise CorruptLog(
                    f"{self.path}: not a producer id ({text[:40]!r}); set it above "
                    "every id handed out"
                )
            first = int(text)
        end = first + BLOCK_SIZE
        try:
            atomic_write(self.path, f"{end}\n".encode())
        except OSError as exc:
            raise storage_error(exc, f"write {self.path}", log_failed=False) from exc
        return first, end
