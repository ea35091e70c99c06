"""Where a broken stream resumes: after the last record delivered, per partition."""

from __future__ import annotations

from minimq.client import PartitionInfo, Record, TopicInfo
from minimq.client._stream_position import StreamPosition


def record(partition: int, offset: int) -> Record:
    return Record("t", partition, offset, 0, None, offset, {})


def topic(*ends: int) -> TopicInfo:
    infos = [PartitionInfo(p, 0, end, end, 0) for p, end in enumerate(ends)]
    return TopicInfo("t", len(ends), sum(ends), 0, infos, {})


def test_one_partition_resumes_at_the_next_offset() -> None:
    position = StreamPosition("t", "earliest", 1)
    assert position.request()[1] == {"from": "earliest", "partition": 1}
    assert position.admit([record(1, 0), record(1, 1)]) == [record(1, 0), record(1, 1)]
    assert position.request()[1] == {"from": 2, "partition": 1}


def test_one_partition_from_an_offset_resumes_there_before_any_record() -> None:
    position = StreamPosition("t", 7, 0)
    position.request()
    assert position.request()[1] == {"from": 7, "partition": 0}


def test_every_partition_replays_from_earliest_and_skips_what_was_delivered() -> None:
    position = StreamPosition("t", "latest", None)
    assert position.needs_end_offsets
    position.start_at_ends(topic(5, 3))
    assert position.request()[1] == {"from": "latest"}
    assert position.admit([record(0, 5), record(1, 3)]) == [record(0, 5), record(1, 3)]
    assert position.request()[1] == {"from": "earliest"}
    replay = [record(0, n) for n in range(7)] + [record(1, n) for n in range(5)]
    # Before the stream began (below the ends) or already delivered: skipped.
    assert position.admit(replay) == [record(0, 6), record(1, 4)]


def test_an_earliest_stream_needs_no_end_offsets() -> None:
    position = StreamPosition("t", "earliest", None)
    assert not position.needs_end_offsets
    position.request()
    assert position.admit([record(0, 0)]) == [record(0, 0)]
    assert position.admit([record(0, 0), record(1, 0)]) == [record(1, 0)]
