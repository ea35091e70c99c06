"""How many headers a record may carry, and how many bytes of them.

Why.  A header costs the broker far more per byte than a value: every fetch
decodes each one into a name and a value and writes it out as JSON, while a
value goes out verbatim. Measured here, a record with 90,000 headers (under
the 1 MiB record limit) held the event loop for 55 ms per fetch, and a
64 MiB fetch of such records for 4.6 s, in which no other request was
served. So a produce is refused whole (``400 HEADERS_TOO_LARGE``, nothing
stored) when one of its records carries more than ``max_count`` headers or
more than ``max_bytes`` bytes of header names (UTF-8) and values. Records
stored before the bound are read at a bounded cost too: a read counts each
header against its byte budget (:data:`minimq.recordbatch.frames.HEADER_READ_BYTES`).

The check runs for records that carry headers only, in the loop that sizes
every record of a produce, so a produce without headers pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from minimq.core.records import Header
from minimq.errors import HeadersTooLarge

DEFAULT_MAX_HEADERS: Final = 64
DEFAULT_MAX_HEADER_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    """The bound on one record's headers (immutable, so any task may share it)."""

    max_count: int = DEFAULT_MAX_HEADERS
    max_bytes: int = DEFAULT_MAX_HEADER_BYTES

    def checked_size(self, headers: Sequence[Header]) -> int:
        """Bytes of ``headers`` (names in UTF-8, values), or ``HeadersTooLarge`` past a bound.

        The count is checked before any header is looked at, so a record with
        a huge number of them costs nothing more to refuse.
        """
        if len(headers) > self.max_count:
            raise HeadersTooLarge(
                f"a record may carry at most {self.max_count} headers, not {len(headers)}"
            )
        size = sum(
            len(name.encode("utf-8", "surrogatepass")) + len(value) for name, value in headers
        )
        if size > self.max_bytes:
            raise HeadersTooLarge(
                f"a record's headers may hold at most {self.max_bytes} bytes, not {size}"
            )
        return size


DEFAULT_HEADER_LIMITS: Final = HeaderLimits()
