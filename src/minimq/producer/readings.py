"""Realistic sensor readings: one bounded, mean-reverting random walk per sensor.

A reading is the JSON object sent as the record value (the record key is the
``sensor_id``, so one sensor's readings stay ordered in one partition)::

    {"sensor_id": "temperature-3f2a", "producer_id": "edge-1", "seq": 17,
     "value": 21.43, "unit": "C", "timestamp": "2026-11-27T23:40:00.123Z"}

``seq`` counts the readings of one producer from 1, so a consumer can tell a
gap (a lost reading) from a duplicate (a retried delivery).

Not thread-safe: each :class:`Sensor` belongs to the thread that ticks it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Profile:
    """How one kind of quantity moves: around ``typical``, by ``step``, within bounds."""

    unit: str
    typical: float
    spread: float
    step: float
    low: float
    high: float


PROFILES: dict[str, Profile] = {
    "temperature": Profile("C", typical=21.0, spread=3.0, step=0.15, low=-40.0, high=60.0),
    "humidity": Profile("%", typical=50.0, spread=10.0, step=0.5, low=0.0, high=100.0),
    "pressure": Profile("hPa", typical=1013.0, spread=8.0, step=0.3, low=950.0, high=1060.0),
}
GENERIC = Profile("units", typical=50.0, spread=10.0, step=1.0, low=0.0, high=100.0)

# Fraction of the distance to the typical value recovered per step: keeps a
# long-running walk plausible instead of drifting to a bound.
_REVERSION = 0.02


class Sensor:
    """One simulated sensor of ``topic`` owned by ``producer_id``."""

    def __init__(self, topic: str, producer_id: str, rng: random.Random) -> None:
        self.topic = topic
        self.producer_id = producer_id
        self.profile = PROFILES.get(topic, GENERIC)
        self.sensor_id = f"{topic}-{rng.getrandbits(16):04x}"
        self._rng = rng
        self._value = rng.uniform(
            self.profile.typical - self.profile.spread, self.profile.typical + self.profile.spread
        )

    def read(self, seq: int) -> dict[str, Any]:
        """Advance the walk one step and return the reading, numbered ``seq``."""
        profile = self.profile
        drift = (profile.typical - self._value) * _REVERSION
        self._value += drift + self._rng.gauss(0.0, profile.step)
        self._value = min(profile.high, max(profile.low, self._value))
        return {
            "sensor_id": self.sensor_id,
            "producer_id": self.producer_id,
            "seq": seq,
            "value": round(self._value, 2),
            "unit": profile.unit,
            "timestamp": iso_timestamp(datetime.now(UTC)),
        }


def iso_timestamp(moment: datetime) -> str:
    """UTC time with milliseconds and a ``Z``: ``2026-11-27T23:40:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
