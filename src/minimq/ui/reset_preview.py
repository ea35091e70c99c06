"""What an offset reset would do, computed before it is done.

The broker resolves a reset target per partition the same way (see
``POST /v1/groups/{group}/reset``): ``earliest`` is the log start, ``latest``
the end offset, a time the first offset with a timestamp at or after it (the
end offset when there is none), and an explicit offset must lie within
``[start, end]``.  The preview asks for the same numbers through the fetch
API, so the confirmation page shows every partition's committed offset now,
after, and how many records the group will re-read or skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from minimq.client import Client
from minimq.errors import OffsetOutOfRange
from minimq.ui.browse import selected_partitions


@dataclass(frozen=True)
class PreviewRow:
    partition: int
    committed: int | None
    new_offset: int
    end_offset: int

    @property
    def new_lag(self) -> int:
        return self.end_offset - self.new_offset

    @property
    def change(self) -> str:
        """``re-reads 40``, ``skips 12`` or ``no change``, against the committed offset."""
        if self.committed is None:
            return "first commit"
        moved = self.new_offset - self.committed
        if moved == 0:
            return "no change"
        return f"skips {moved:,}" if moved > 0 else f"re-reads {-moved:,}"


def preview_reset(
    client: Client,
    group: str,
    topic: str,
    target: Literal["earliest", "latest", "offset", "timestamp"],
    *,
    offset: int | None,
    timestamp: int | None,
    partition: int | None,
) -> list[PreviewRow]:
    info = client.describe_topic(topic)
    committed = {
        o.partition: o.committed_offset
        for o in client.describe_group(group).offsets
        if o.topic == topic
    }
    rows = []
    for part in selected_partitions(info, partition):
        if target == "earliest":
            new_offset = part.start_offset
        elif target == "latest":
            new_offset = part.end_offset
        elif target == "timestamp":
            assert timestamp is not None
            located = client.fetch(topic, part.partition, timestamp=timestamp, limit=1).records
            new_offset = located[0].offset if located else part.end_offset
        else:
            assert offset is not None
            if not part.start_offset <= offset <= part.end_offset:
                raise OffsetOutOfRange(
                    f"offset {offset} is outside partition {part.partition}'s "
                    f"{part.start_offset:,}..{part.end_offset:,}"
                )
            new_offset = offset
        rows.append(
            PreviewRow(
                partition=part.partition,
                committed=committed.get(part.partition),
                new_offset=new_offset,
                end_offset=part.end_offset,
            )
        )
    return rows
