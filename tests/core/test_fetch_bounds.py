"""A fetch asks its partition's bounds once (each is a leader request with JetStream), and the
high watermark it reports is never below a record it hands out."""

from __future__ import annotations

from minimq.core import Broker, FetchLimits, ProduceRecord, StartPosition
from minimq.core.storage_seam import LogBounds
from tests.support.memory_storage import MemoryPartitionLog, MemoryStorage


class CountedBounds:
    """Counts a partition log's ``bounds()`` calls; ``lag`` makes the next answer that many
    records behind (a backend may answer an end older than a read sees, never a lower one
    than it answered before)."""

    def __init__(self, log: MemoryPartitionLog) -> None:
        self.calls = 0
        self.lag = 0
        ask = log.bounds

        async def counted() -> LogBounds:
            self.calls += 1
            bounds = await ask()
            lag, self.lag = self.lag, 0
            return bounds._replace(end=bounds.end - lag)

        log.bounds = counted  # type: ignore[method-assign]


async def _broker_with(records: int) -> tuple[Broker, CountedBounds]:
    storage = MemoryStorage()
    broker = Broker(storage)  # type: ignore[arg-type]
    await broker.produce("t", [ProduceRecord(str(i).encode(), partition=0) for i in range(records)])
    return broker, CountedBounds(storage.logs.partition("t", 0))


async def test_a_fetch_asks_the_bounds_once_whatever_its_start() -> None:
    broker, bounds = await _broker_with(10)
    for start, first in (
        (StartPosition.at_offset(4), 4),
        (StartPosition.earliest(), 0),
        (StartPosition.latest(), None),
        (StartPosition.at_offset(10), None),
    ):
        bounds.calls = 0
        result = await broker.fetch("t", 0, start, FetchLimits(max_records=3))
        assert bounds.calls == 1, start
        assert [r.offset for r in result.records][:1] == ([] if first is None else [first])
        assert (result.high_watermark, result.start_offset) == (10, 0)
    bounds.calls = 0
    raw = await broker.fetch_raw("t", 0, 3, 1024 * 1024)
    assert raw.batches and (raw.high_watermark, raw.log_start_offset) == (10, 0)
    assert bounds.calls == 1
    bounds.calls = 0
    assert (await broker.fetch_raw("t", 0, 10, 1024 * 1024)).batches == []
    assert bounds.calls == 1


async def test_records_read_past_the_bounds_end_move_the_high_watermark_up() -> None:
    broker, bounds = await _broker_with(10)
    bounds.lag = 4  # the bounds say 6; the read finds records up to 10
    result = await broker.fetch("t", 0, StartPosition.at_offset(5), FetchLimits(max_records=100))
    assert [r.offset for r in result.records] == [5, 6, 7, 8, 9]
    assert result.high_watermark == 10 >= result.next_offset
    bounds.lag = 4
    raw = await broker.fetch_raw("t", 0, 5, 1024 * 1024)
    assert raw.batches and raw.high_watermark == 10
