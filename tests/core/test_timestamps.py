from __future__ import annotations

import pytest

from minimq.core.timestamps import (
    DEFAULT_AFTER_MAX_MS,
    DEFAULT_BEFORE_MAX_MS,
    TimestampBounds,
    check_timestamps,
)
from minimq.core.topic_config import UNBOUNDED_MS, TopicConfig
from minimq.errors import InvalidRequest, InvalidTimestamp

NOW = 1_800_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR
BOUNDED = TopicConfig(message_timestamp_before_max_ms=DAY, message_timestamp_after_max_ms=HOUR)


def test_the_defaults_are_kafka_4s() -> None:
    # message.timestamp.after.max.ms = 3600000 since Kafka 4.0 (KIP-1030);
    # message.timestamp.before.max.ms = Long.MAX_VALUE.
    assert (DEFAULT_BEFORE_MAX_MS, DEFAULT_AFTER_MAX_MS) == (2**63 - 1, 3_600_000)
    assert TimestampBounds() == TimestampBounds(UNBOUNDED_MS, HOUR)


def test_records_without_a_producer_timestamp_always_pass() -> None:
    strict = TopicConfig(message_timestamp_before_max_ms=0, message_timestamp_after_max_ms=0)
    check_timestamps([None, None], strict, NOW)
    check_timestamps([], strict, NOW)


@pytest.mark.parametrize(
    "stamp", [NOW, NOW - DAY, NOW + HOUR, NOW - 1, NOW + 1], ids=str
)  # the bounds themselves are accepted, as in Kafka
def test_timestamps_within_the_bounds_pass(stamp: int) -> None:
    check_timestamps([stamp, None], BOUNDED, NOW)


@pytest.mark.parametrize(
    ("stamp", "setting"),
    [
        (NOW + HOUR + 1, "message_timestamp_after_max_ms"),
        (NOW + 365 * DAY, "message_timestamp_after_max_ms"),
        (NOW - DAY - 1, "message_timestamp_before_max_ms"),
        (0, "message_timestamp_before_max_ms"),
    ],
)
def test_one_timestamp_out_of_bounds_refuses_the_whole_request(stamp: int, setting: str) -> None:
    with pytest.raises(InvalidTimestamp, match=setting) as refused:
        check_timestamps([NOW, None, stamp, NOW - 5], BOUNDED, NOW)
    assert str(stamp) in refused.value.message
    assert isinstance(refused.value, InvalidRequest)  # a 400, the client's to fix
    assert refused.value.code == "INVALID_TIMESTAMP"


def test_broker_defaults_apply_where_the_topic_sets_nothing() -> None:
    inherit = TopicConfig()
    check_timestamps([0, NOW + HOUR], inherit, NOW)  # Kafka's defaults: any past, 1 h ahead
    with pytest.raises(InvalidTimestamp, match="after"):
        check_timestamps([NOW + HOUR + 1], inherit, NOW)
    tight = TimestampBounds(before_max_ms=1_000, after_max_ms=10)
    with pytest.raises(InvalidTimestamp, match="before"):
        check_timestamps([NOW - 1_001], inherit, NOW, tight)
    with pytest.raises(InvalidTimestamp, match="after"):
        check_timestamps([NOW + 11], inherit, NOW, tight)
    check_timestamps([NOW - 1_000, NOW + 10], inherit, NOW, tight)


def test_a_topic_setting_wins_over_the_broker_default_either_way() -> None:
    tight = TimestampBounds(before_max_ms=0, after_max_ms=0)
    check_timestamps([NOW - DAY, NOW + HOUR], BOUNDED, NOW, tight)  # looser than the broker
    loose = TimestampBounds(UNBOUNDED_MS, UNBOUNDED_MS)
    with pytest.raises(InvalidTimestamp):
        check_timestamps([NOW + 2 * HOUR], BOUNDED, NOW, loose)  # stricter than the broker
    only_after = TopicConfig(message_timestamp_after_max_ms=0)  # before: the broker's
    with pytest.raises(InvalidTimestamp, match="before"):
        check_timestamps([NOW - 1], only_after, NOW, tight)


def test_unbounded_accepts_every_representable_timestamp() -> None:
    free = TopicConfig(
        message_timestamp_before_max_ms=UNBOUNDED_MS, message_timestamp_after_max_ms=UNBOUNDED_MS
    )
    check_timestamps([0, NOW, 2**63 - 1], free, NOW)
