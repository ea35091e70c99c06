"""Every topic of a data directory: names, persisted configs and their partition logs.

Layout::

    DATA_DIR/topics/<topic>/topic.json            the TopicConfig (atomic replace)
    DATA_DIR/topics/<topic>/<partition>/<base>.log|.index|.timeindex
    DATA_DIR/trash/                               deleted topics being removed

``topic.json`` is written last when a topic is created, so a topic directory
without it and without records is an interrupted creation and is removed at
open; one that holds records gets a rebuilt ``topic.json`` instead (as does
one whose ``topic.json`` is unreadable), so no record is ever dropped for
want of its metadata.  Deleting a
topic renames its directory into ``trash/`` (atomic) before removing the
files, so a crash never leaves half a topic visible; ``trash/`` is emptied at
open.  Topic names are checked against ``^[A-Za-z0-9._-]{1,249}$`` (not ``.``
or ``..``) before they name any path, so no request reaches outside DATA_DIR.
A new name may not equal an existing one ignoring case and ``.``/``_``
(``InvalidTopicName``), so every topic has its own directory everywhere.

Concurrency: all methods run on the event-loop thread; creation and deletion
are serialized by one lock and do their file work in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Final

from minimq.errors import (
    CorruptLog,
    InvalidConfig,
    InvalidTopicName,
    PartitionNotFound,
    TopicAlreadyExists,
    TopicNotFound,
)
from minimq.storage.api import UNBOUNDED_MS, FsyncPolicy, TopicConfig
from minimq.storage.files import atomic_write, fsync_dir, storage_error
from minimq.storage.partition import DiskPartitionLog, now_ms

log = logging.getLogger(__name__)

TOPIC_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")
CONFIG_FILE: Final = "topic.json"
CONFIG_FORMAT: Final = 1
MAX_PARTITIONS: Final = 1024
MIN_SEGMENT_BYTES: Final = 1024
MAX_SEGMENT_BYTES: Final = 1024 * 1024 * 1024  # index positions are uint32


def validate_topic_name(name: str) -> str:
    """Return ``name`` if it is a valid topic name, else raise ``InvalidTopicName``."""
    if not isinstance(name, str) or not TOPIC_NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidTopicName(
            f"topic names are 1-249 characters of A-Z a-z 0-9 . _ - (not . or ..): {name!r}"
        )
    return name


def validate_config(config: TopicConfig) -> TopicConfig:
    """Return ``config`` if every setting is in range, else raise ``InvalidConfig``."""

    def positive_or_none(value: object, what: str) -> None:
        if value is not None and (type(value) is not int or value <= 0):
            raise InvalidConfig(f"{what} must be a positive integer or unset, not {value!r}")

    if type(config.partitions) is not int or not 1 <= config.partitions <= MAX_PARTITIONS:
        raise InvalidConfig(f"partitions must be 1-{MAX_PARTITIONS}, not {config.partitions!r}")
    if (
        type(config.segment_bytes) is not int
        or not MIN_SEGMENT_BYTES <= config.segment_bytes <= MAX_SEGMENT_BYTES
    ):
        raise InvalidConfig(
            f"segment_bytes must be {MIN_SEGMENT_BYTES}-{MAX_SEGMENT_BYTES}, "
            f"not {config.segment_bytes!r}"
        )
    positive_or_none(config.retention_ms, "retention_ms")
    positive_or_none(config.retention_bytes, "retention_bytes")
    positive_or_none(config.segment_ms, "segment_ms")
    for name in ("message_timestamp_before_max_ms", "message_timestamp_after_max_ms"):
        bound = getattr(config, name)
        if bound is not None and (type(bound) is not int or not 0 <= bound <= UNBOUNDED_MS):
            raise InvalidConfig(f"{name} must be 0-{UNBOUNDED_MS} or unset, not {bound!r}")
    if config.fsync is not None and not isinstance(config.fsync, FsyncPolicy):
        raise InvalidConfig(f"fsync must be a FsyncPolicy or unset, not {config.fsync!r}")
    return config


def config_to_json(config: TopicConfig) -> bytes:
    document: dict[str, Any] = {
        "format": CONFIG_FORMAT,
        "partitions": config.partitions,
        "retention_ms": config.retention_ms,
        "retention_bytes": config.retention_bytes,
        "segment_bytes": config.segment_bytes,
        "segment_ms": config.segment_ms,
        "fsync": None if config.fsync is None else str(config.fsync),
        "message_timestamp_before_max_ms": config.message_timestamp_before_max_ms,
        "message_timestamp_after_max_ms": config.message_timestamp_after_max_ms,
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def config_from_json(raw: bytes, path: Path) -> TopicConfig:
    try:
        document = json.loads(raw)
        fsync = document["fsync"]
        config = TopicConfig(
            partitions=document["partitions"],
            retention_ms=document["retention_ms"],
            retention_bytes=document["retention_bytes"],
            segment_bytes=document["segment_bytes"],
            segment_ms=document["segment_ms"],
            fsync=None if fsync is None else FsyncPolicy.parse(fsync),
            # Optional: topic.json files written before these settings existed lack
            # them and mean the broker-wide default, as null does.
            message_timestamp_before_max_ms=document.get("message_timestamp_before_max_ms"),
            message_timestamp_after_max_ms=document.get("message_timestamp_after_max_ms"),
        )
        return validate_config(config)
    except (ValueError, KeyError, TypeError, InvalidConfig) as exc:
        raise CorruptLog(f"{path}: unreadable topic metadata ({exc}); refusing to open") from None


def _clash_key(name: str) -> str:
    """Names with equal keys may not coexist.

    Case: on a case-insensitive file system (macOS, Windows) both would be one
    directory.  ``.`` versus ``_``: Kafka's rule, kept so topics can move to
    and from Kafka (whose metric names fold the two together).
    """
    return name.casefold().replace(".", "_")


def _holds_records(topic_dir: Path) -> bool:
    """True when any partition of ``topic_dir`` has a non-empty segment."""
    return any(path.stat().st_size > 0 for path in topic_dir.glob("*/*.log"))


def _rebuild_config(topic_dir: Path, reason: str) -> TopicConfig:
    """A topic.json rebuilt from the partition directories, the damaged one kept as ``.bad``.

    A topic that holds records is never dropped for want of its metadata: the
    partition count is what the directories show, every other setting takes
    its default (so retention may keep more than before, never less).
    """
    numbers = [
        int(p.name)
        for p in topic_dir.iterdir()
        if p.is_dir() and p.name.isdigit() and int(p.name) < MAX_PARTITIONS
    ]
    config = TopicConfig(partitions=max(numbers, default=0) + 1)
    config_path = topic_dir / CONFIG_FILE
    if config_path.exists():
        config_path.replace(config_path.with_name(CONFIG_FILE + ".bad"))
    atomic_write(config_path, config_to_json(config))
    log.error(
        "%s: %s; rebuilt it with %d partition(s) and default settings (retention, segment "
        "size, fsync, timestamp bounds): check them",
        topic_dir,
        reason,
        config.partitions,
    )
    return config


class DiskLogStore:
    """The ``LogStore`` of one data directory (see the module docstring)."""

    def __init__(self, data_dir: Path, default_fsync: FsyncPolicy) -> None:
        self.topics_dir = data_dir / "topics"
        self.trash_dir = data_dir / "trash"
        self.default_fsync = default_fsync
        self._configs: dict[str, TopicConfig] = {}
        self._partitions: dict[str, list[DiskPartitionLog]] = {}
        self._admin_lock = asyncio.Lock()

    # ----------------------------------------------------------------- opening

    def open_all(self, *, clean: bool) -> None:
        """Load and recover every topic (blocking; runs before the store is shared)."""
        try:
            self._open_all(clean=clean)
        except BaseException:
            for partitions in self._partitions.values():
                for partition in partitions:
                    partition.close_files()
            raise

    def _open_all(self, *, clean: bool) -> None:
        self.topics_dir.mkdir(exist_ok=True)
        if self.trash_dir.exists():
            shutil.rmtree(self.trash_dir)
        self.trash_dir.mkdir()
        # The entries of topics/ and trash/ in DATA_DIR must be durable before any
        # topic is acknowledged: without this fsync a power cut after the first
        # start could drop topics/ (and every topic in it) with the parent entry.
        fsync_dir(self.topics_dir.parent)
        for topic_dir in sorted(self.topics_dir.iterdir()):
            name = topic_dir.name
            if not topic_dir.is_dir() or not TOPIC_NAME.fullmatch(name) or name in (".", ".."):
                log.warning("%s: not a topic directory, ignored", topic_dir)
                continue
            config_path = topic_dir / CONFIG_FILE
            if config_path.exists():
                try:
                    config = config_from_json(config_path.read_bytes(), config_path)
                except CorruptLog as exc:
                    config = _rebuild_config(topic_dir, exc.message)
            elif _holds_records(topic_dir):
                config = _rebuild_config(topic_dir, f"{config_path} is missing")
            else:
                log.warning("%s: interrupted topic creation, removing it", topic_dir)
                self._discard(topic_dir)
                continue
            self._configs[name] = config
            self._partitions[name] = self._open_partitions(topic_dir, config, clean=clean)
        fsync_dir(self.topics_dir)

    def _open_partitions(
        self, topic_dir: Path, config: TopicConfig, *, clean: bool
    ) -> list[DiskPartitionLog]:
        fsync = config.fsync or self.default_fsync
        opened: list[DiskPartitionLog] = []
        try:
            for number in range(config.partitions):
                directory = topic_dir / str(number)
                directory.mkdir(exist_ok=True)
                opened.append(DiskPartitionLog.open(directory, config, fsync, clean=clean))
        except BaseException:
            for partition in opened:
                partition.close_files()
            raise
        return opened

    def _discard(self, topic_dir: Path) -> None:
        """Move a topic directory to the trash (atomic), then delete it (blocking)."""
        target = self.trash_dir / f"{topic_dir.name}-{uuid.uuid4().hex}"
        topic_dir.rename(target)
        fsync_dir(self.topics_dir)
        shutil.rmtree(target)

    # ----------------------------------------------------------------- LogStore

    def topic_names(self) -> list[str]:
        return sorted(self._configs)

    def topic_config(self, topic: str) -> TopicConfig:
        try:
            return self._configs[topic]
        except KeyError:
            raise TopicNotFound(f"topic {topic!r} does not exist") from None

    def partition(self, topic: str, partition: int) -> DiskPartitionLog:
        try:
            partitions = self._partitions[topic]
        except KeyError:
            raise TopicNotFound(f"topic {topic!r} does not exist") from None
        if type(partition) is not int or not 0 <= partition < len(partitions):
            raise PartitionNotFound(
                f"topic {topic!r} has partitions 0-{len(partitions) - 1}, not {partition!r}"
            )
        return partitions[partition]

    def partitions(self, topic: str) -> list[DiskPartitionLog]:
        """Every partition log of ``topic``, in partition order."""
        self.topic_config(topic)
        return list(self._partitions[topic])

    async def create_topic(self, topic: str, config: TopicConfig) -> None:
        validate_topic_name(topic)
        validate_config(config)
        async with self._admin_lock:
            if topic in self._configs:
                raise TopicAlreadyExists(f"topic {topic!r} already exists")
            clash = next((t for t in self._configs if _clash_key(t) == _clash_key(topic)), None)
            if clash is not None:
                raise InvalidTopicName(
                    f"topic name {topic!r} collides with the existing topic {clash!r}: names "
                    "must differ by more than letter case or '.' versus '_'"
                )
            topic_dir = self.topics_dir / topic

            def create() -> list[DiskPartitionLog]:
                topic_dir.mkdir()
                partitions: list[DiskPartitionLog] = []
                try:
                    partitions = self._open_partitions(topic_dir, config, clean=True)
                    fsync_dir(topic_dir)
                    atomic_write(topic_dir / CONFIG_FILE, config_to_json(config))
                    fsync_dir(self.topics_dir)
                except BaseException:
                    # Never leave half a topic behind (open files, a directory that
                    # would make every retry fail): the creation was not acknowledged.
                    for partition in partitions:
                        partition.close_files()
                    try:
                        self._discard(topic_dir)
                    except OSError as exc:
                        log.error("%s: cannot remove a failed creation: %s", topic_dir, exc)
                    raise
                return partitions

            try:
                partitions = await asyncio.get_running_loop().run_in_executor(None, create)
            except OSError as exc:
                # EMFILE (each partition keeps its active segment's three files
                # open), ENOSPC, EIO...: a storage failure, not a broker bug.  Nothing
                # of the topic is left, so no log has failed.
                raise storage_error(
                    exc, f"cannot create topic {topic!r}", log_failed=False
                ) from exc
            self._configs[topic] = config
            self._partitions[topic] = partitions

    async def delete_topic(self, topic: str) -> None:
        async with self._admin_lock:
            self.topic_config(topic)
            partitions = self._partitions.pop(topic)
            del self._configs[topic]
            for partition in partitions:
                await partition.close()
            await asyncio.get_running_loop().run_in_executor(
                None, self._discard, self.topics_dir / topic
            )

    async def apply_retention(self) -> int:
        now = now_ms()
        deleted = 0
        for partitions in list(self._partitions.values()):
            for partition in partitions:
                deleted += await partition.apply_retention(now)
        return deleted

    async def close(self) -> None:
        async with self._admin_lock:
            for partitions in self._partitions.values():
                for partition in partitions:
                    await partition.close()

    @property
    def all_closed_cleanly(self) -> bool:
        """False when any partition failed a write (its next open must recover)."""
        return not any(p.failed for parts in self._partitions.values() for p in parts)
