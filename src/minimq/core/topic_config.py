"""A topic's settings and name rule, as the core and every storage backend know them.

:class:`TopicConfig` holds the logical settings (partitions, retention,
timestamp bounds) and, for now, three engine knobs of the disk engine
(``segment_bytes``, ``segment_ms``, ``fsync``): a backend that cannot honour
one refuses it with ``InvalidConfig``.  :class:`FsyncPolicy` lives here, not
in the disk engine, because ``TopicConfig.fsync`` carries it and the core may
not import a backend.

:func:`validate_topic_name` is the broker's own rule for topic names; a
backend may refuse more (``LogStore.validate_topic_name``), never less.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from minimq.errors import InvalidConfig, InvalidTopicName

FsyncMode = Literal["always", "interval", "never"]

# 1-249 characters, as Kafka allows; also what the disk engine may use as a directory name.
TOPIC_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")


def validate_topic_name(name: str) -> str:
    """Return ``name`` if it is a valid topic name, else raise ``InvalidTopicName``."""
    if not isinstance(name, str) or not TOPIC_NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidTopicName(
            f"topic names are 1-249 characters of A-Z a-z 0-9 . _ - (not . or ..): {name!r}"
        )
    return name


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    """When an appended batch counts as durable (a disk-engine knob).

    ``always``: acknowledged only after write + fsync (group-committed).
    ``interval``: acknowledged after write; fsync at most ``interval_ms`` later.
    ``never``: acknowledged after write; the OS decides when to flush.
    """

    mode: FsyncMode = "always"
    interval_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        text = text.strip()
        if text in ("always", "never"):
            return cls(mode=text)  # type: ignore[arg-type]
        if text.startswith("interval:"):
            raw = text.removeprefix("interval:")
            if raw.isdigit() and 0 < int(raw) <= 3_600_000:
                return cls(mode="interval", interval_ms=int(raw))
        raise InvalidConfig(f"fsync policy must be always, never or interval:<ms>, not {text!r}")

    def __str__(self) -> str:
        return f"interval:{self.interval_ms}" if self.mode == "interval" else self.mode


DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
# The largest timestamp bound, meaning "no bound": Kafka's Long.MAX_VALUE.
UNBOUNDED_MS = 2**63 - 1


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """Per-topic settings, persisted atomically with the topic by the backend.

    ``message_timestamp_before_max_ms`` / ``_after_max_ms`` (Kafka's
    ``message.timestamp.before.max.ms`` / ``after.max.ms``): how far before
    or after broker time a producer timestamp may lie, 0 to
    :data:`UNBOUNDED_MS`; ``None`` takes the broker-wide default.  The broker
    core enforces them at produce (``minimq.core.timestamps``); the log itself
    stores whatever timestamp it is given.

    ``topic_id`` is not a setting but the identity of one *incarnation* of the
    topic (a UUID, as Kafka has since 2.8), kept with the settings: the log
    store gives every topic it creates a new one, so a topic deleted and
    created again under the same name is another topic, and committed offsets
    are keyed by it (``OffsetStore``).  ``None`` only in a config that is
    being asked for (``create_topic``); it is left out of comparisons.
    """

    partitions: int = 1
    retention_ms: int | None = None
    retention_bytes: int | None = None
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    segment_ms: int | None = None
    fsync: FsyncPolicy | None = None  # None: the broker-wide policy
    message_timestamp_before_max_ms: int | None = None
    message_timestamp_after_max_ms: int | None = None
    topic_id: str | None = field(default=None, compare=False)
