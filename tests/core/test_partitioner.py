from __future__ import annotations

import pytest

from minimq.core.models import ProduceRecord
from minimq.core.partitioner import Partitioner, partition_for_key
from minimq.errors import PartitionNotFound


def test_keyed_records_always_go_to_the_same_partition() -> None:
    partitioner = Partitioner()
    records = [ProduceRecord(b"1", key=b"sensor-7")] * 5
    chosen = partitioner.assign("t", 8, records)
    assert set(chosen) == {partition_for_key(b"sensor-7", 8)}
    assert partition_for_key(b"sensor-7", 8) == partition_for_key(b"sensor-7", 8)


def test_unkeyed_records_spread_and_start_rotates() -> None:
    partitioner = Partitioner()
    first = partitioner.assign("t", 3, [ProduceRecord(b"1")] * 3)
    second = partitioner.assign("t", 3, [ProduceRecord(b"1")])
    third = partitioner.assign("t", 3, [ProduceRecord(b"1")])
    assert sorted(first) == [0, 1, 2]
    assert {second[0], third[0]} == {1, 2}


def test_explicit_partition_is_checked() -> None:
    partitioner = Partitioner()
    assert partitioner.assign("t", 2, [ProduceRecord(b"1", partition=1)]) == [1]
    with pytest.raises(PartitionNotFound):
        partitioner.assign("t", 2, [ProduceRecord(b"1", partition=2)])
