"""Sensor readings: plausible values per quantity, well-formed fields."""

from __future__ import annotations

import itertools
import random
import re
from datetime import UTC, datetime

import pytest

from minimq.producer.readings import GENERIC, PROFILES, Sensor, iso_timestamp


@pytest.mark.parametrize("topic", ["temperature", "humidity", "pressure", "vibration"])
def test_random_walk_stays_plausible(topic: str) -> None:
    sensor = Sensor(topic, "p1", random.Random(7))
    profile = PROFILES.get(topic, GENERIC)
    values = [sensor.read(seq)["value"] for seq in range(1, 5001)]
    assert all(profile.low <= v <= profile.high for v in values)
    # A walk, not noise: consecutive readings are close to each other.
    steps = [abs(b - a) for a, b in itertools.pairwise(values)]
    assert max(steps) < 8 * profile.step
    # Mean reversion keeps a long walk near the typical value.
    assert abs(sum(values) / len(values) - profile.typical) < 4 * profile.spread


def test_reading_fields() -> None:
    reading = Sensor("humidity", "edge-7", random.Random(1)).read(3)
    assert set(reading) == {"sensor_id", "producer_id", "seq", "value", "unit", "timestamp"}
    assert re.fullmatch(r"humidity-[0-9a-f]{4}", reading["sensor_id"])
    assert (reading["producer_id"], reading["seq"], reading["unit"]) == ("edge-7", 3, "%")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", reading["timestamp"])


def test_units() -> None:
    rng = random.Random(2)
    units = {t: Sensor(t, "p", rng).read(1)["unit"] for t in ("temperature", "pressure", "x")}
    assert units == {"temperature": "C", "pressure": "hPa", "x": "units"}


def test_iso_timestamp() -> None:
    moment = datetime(2026, 11, 27, 23, 40, 0, 123456, tzinfo=UTC)
    assert iso_timestamp(moment) == "2026-11-27T23:40:00.123Z"
