"""The disk engine's resource bounds: open segment files, topics, partitions.

Each one bounds something that otherwise grows with what clients create:

* ``max_open_segment_files``: descriptors held for segment files
  (:mod:`minimq.storage.descriptors`); the rest of the broker's descriptors
  are its connections, bounded by ``--max-connections``.
* ``max_topics`` and ``max_partitions`` (all topics together): memory for
  each partition's state and index, the work of every start-up, and the
  directories in ``DATA_DIR/topics``.  A creation beyond either, explicit or
  by a first produce, is refused with ``TOPIC_LIMIT_REACHED`` or
  ``PARTITION_LIMIT_REACHED`` and creates nothing.  A data directory that
  already holds more (the bounds were lowered) opens whole, with a warning:
  no topic is ever dropped for a bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from minimq.errors import InvalidConfig

DEFAULT_MAX_OPEN_SEGMENT_FILES: Final = 512
DEFAULT_MAX_TOPICS: Final = 10_000
DEFAULT_MAX_PARTITIONS: Final = 20_000


@dataclass(frozen=True, slots=True)
class StorageLimits:
    max_open_segment_files: int = DEFAULT_MAX_OPEN_SEGMENT_FILES
    max_topics: int = DEFAULT_MAX_TOPICS
    max_partitions: int = DEFAULT_MAX_PARTITIONS

    def __post_init__(self) -> None:
        for name in ("max_open_segment_files", "max_topics", "max_partitions"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise InvalidConfig(f"{name} must be a positive integer, not {value!r}")
