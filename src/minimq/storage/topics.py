"""Every topic of a data directory: names, persisted configs and their partition logs.

Layout::

    DATA_DIR/topics/<topic>/topic.json            the TopicConfig (atomic replace)
    DATA_DIR/topics/<topic>/<partition>/<base>.log|.index|.timeindex
    DATA_DIR/trash/                               topics being created or removed
    DATA_DIR/unrecognized/                        what MiniMQ found in topics/ and did not make

A topic is created in ``trash/`` (its partition directories, then
``topic.json``) and renamed into ``topics/`` in one atomic step, so
``topics/`` never holds half a topic; a crash leaves the half in ``trash/``,
which is emptied at open.  Deleting a topic renames its directory into
``trash/`` before removing the files.  A topic directory whose ``topic.json``
is missing or unreadable but that holds records gets a rebuilt
``topic.json``, so no record is ever dropped for want of its metadata.

MiniMQ never deletes what it did not create, and never follows a symbolic
link under ``topics/``.  At open, an entry of ``topics/`` with a valid topic
name that is a symbolic link, not a directory, or a directory with neither
``topic.json`` nor records is moved into ``unrecognized/`` (the link itself,
never its target) and logged as an error; entries whose names are not topic
names are left alone.  A partition directory that is a symbolic link stops
the open with an error naming it, and segment files are opened with
``O_NOFOLLOW``, so no write can land outside DATA_DIR.

Every topic has a ``topic_id`` (a random UUID in ``topic.json``), new for
each creation, so a topic deleted and created again under its name is another
topic (committed offsets are keyed by it, :mod:`minimq.storage.offsets`).  A
``topic.json`` without one (written before topic ids, or rebuilt) gets one at
open, written only by :meth:`DiskLogStore.persist_topic_ids` once the offsets
store has adopted the topic's commits.

Topic names are checked against ``^[A-Za-z0-9._-]{1,249}$`` (not ``.``
or ``..``) before they name any path, so no request reaches outside DATA_DIR.
A new name may not equal an existing one ignoring case and ``.``/``_``
(``InvalidTopicName``), so every topic has its own directory everywhere.
Creations beyond the :class:`~minimq.storage.limits.StorageLimits` (topics,
partitions of all topics) are refused before anything is made.

Concurrency: all methods run on the event-loop thread; creation and deletion
are serialized by one lock and do their file work in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Final

from minimq.core.storage_seam import AppendListener
from minimq.core.topic_config import (
    TOPIC_NAME,
    UNBOUNDED_MS,
    FsyncPolicy,
    TopicConfig,
    validate_topic_name,
)
from minimq.errors import (
    CorruptLog,
    InvalidConfig,
    InvalidTopicName,
    PartitionLimitReached,
    PartitionNotFound,
    StorageError,
    TopicAlreadyExists,
    TopicLimitReached,
    TopicNotFound,
)
from minimq.storage.descriptors import DescriptorCache
from minimq.storage.files import atomic_write, fsync_dir, storage_error
from minimq.storage.limits import StorageLimits
from minimq.storage.partition import DiskPartitionLog, now_ms
from minimq.storage.segment import NO_SPACE_ERRNOS

log = logging.getLogger(__name__)

CONFIG_FILE: Final = "topic.json"
CONFIG_FORMAT: Final = 1
TOPIC_ID: Final = re.compile(r"[0-9a-f]{32}")
MAX_PARTITIONS: Final = 1024
MIN_SEGMENT_BYTES: Final = 1024
MAX_SEGMENT_BYTES: Final = 1024 * 1024 * 1024  # index positions are uint32


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
        "topic_id": config.topic_id,
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
            # Absent from topic.json files written before topic ids: the open gives one.
            topic_id=_stored_topic_id(document.get("topic_id")),
        )
        return validate_config(config)
    except (ValueError, KeyError, TypeError, InvalidConfig) as exc:
        raise CorruptLog(f"{path}: unreadable topic metadata ({exc}); refusing to open") from None


def new_topic_id() -> str:
    """A new topic incarnation's id: a random UUID, as 32 lower-case hex digits."""
    return uuid.uuid4().hex


def _stored_topic_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not TOPIC_ID.fullmatch(value):
        raise ValueError(f"topic_id must be 32 lower-case hex digits, not {value!r}")
    return value


def _clash_key(name: str) -> str:
    """Names with equal keys may not coexist.

    Case: on a case-insensitive file system (macOS, Windows) both would be one
    directory.  ``.`` versus ``_``: Kafka's rule, kept so topics can move to
    and from Kafka (whose metric names fold the two together).
    """
    return name.casefold().replace(".", "_")


def _holds_records(topic_dir: Path) -> bool:
    """True when any partition of ``topic_dir`` has a non-empty segment."""
    return any(path.lstat().st_size > 0 for path in topic_dir.glob("*/*.log"))


def _is_topic_name(name: str) -> bool:
    return TOPIC_NAME.fullmatch(name) is not None and name not in (".", "..")


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
    try:
        atomic_write(config_path, config_to_json(config))
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS:
            raise
        # A full disk must not keep the topic's records from being served: the
        # rebuilt settings live in memory, and the next open rebuilds them again.
        log.error("%s: no space to write the rebuilt %s; kept in memory", topic_dir, CONFIG_FILE)
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

    def __init__(
        self, data_dir: Path, default_fsync: FsyncPolicy, limits: StorageLimits | None = None
    ) -> None:
        self.topics_dir = data_dir / "topics"
        self.trash_dir = data_dir / "trash"
        self.unrecognized_dir = data_dir / "unrecognized"
        self.default_fsync = default_fsync
        self.limits = limits or StorageLimits()
        # Every segment file of the data directory leases its descriptor here.
        self.files = DescriptorCache(self.limits.max_open_segment_files)
        self._configs: dict[str, TopicConfig] = {}
        self._partitions: dict[str, list[DiskPartitionLog]] = {}
        self._admin_lock = asyncio.Lock()
        # Topics opened without a topic id in topic.json (written before topic ids,
        # or rebuilt): given one in memory, written by persist_topic_ids once the
        # offsets store has adopted their commits under it.
        self.unpersisted_topic_ids: set[str] = set()
        self._append_listeners: list[AppendListener] = []

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
        self._empty_trash()
        # The entries of topics/ and trash/ in DATA_DIR must be durable before any
        # topic is acknowledged: without this fsync a power cut after the first
        # start could drop topics/ (and every topic in it) with the parent entry.
        fsync_dir(self.topics_dir.parent)
        for topic_dir in sorted(self.topics_dir.iterdir()):
            name = topic_dir.name
            if not _is_topic_name(name):
                log.warning("%s: not a topic name, ignored", topic_dir)
                continue
            if topic_dir.is_symlink() or not topic_dir.is_dir():
                kind = "a symbolic link" if topic_dir.is_symlink() else "not a directory"
                self._move_aside(topic_dir, f"{kind}, so not a topic")
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
                self._move_aside(topic_dir, f"neither {CONFIG_FILE} nor records, so not a topic")
                continue
            if config.topic_id is None:
                config = dataclasses.replace(config, topic_id=new_topic_id())
                self.unpersisted_topic_ids.add(name)
            self._configs[name] = config
            self._partitions[name] = self._open_partitions(topic_dir, config, clean=clean)
        fsync_dir(self.topics_dir)
        topics, partitions = len(self._configs), self._partition_count()
        if topics > self.limits.max_topics or partitions > self.limits.max_partitions:
            log.warning(
                "%d topics with %d partitions are more than the limits (%d topics, %d "
                "partitions): all are served, but no topic can be created until some are deleted",
                topics,
                partitions,
                self.limits.max_topics,
                self.limits.max_partitions,
            )

    def persist_topic_ids(self) -> None:
        """Write the topic ids given at open into ``topic.json`` (blocking; during open).

        Runs after the offsets store adopted those topics' commits (see
        :mod:`minimq.storage.offsets`).  A file that cannot be written is only
        logged: its topic gets another id at the next open, which adopts the
        commits again, so nothing is lost either way.
        """
        for name in sorted(self.unpersisted_topic_ids):
            path = self.topics_dir / name / CONFIG_FILE
            try:
                atomic_write(path, config_to_json(self._configs[name]))
            except OSError as exc:
                log.error("%s: cannot write its topic id (%s); kept in memory", path, exc)
                continue
            self.unpersisted_topic_ids.discard(name)

    def topic_ids(self) -> dict[str, str]:
        """Every topic's name and topic id."""
        return {name: config.topic_id or "" for name, config in self._configs.items()}

    def topic_id(self, topic: str) -> str | None:
        """The id of ``topic``'s current incarnation, None when there is no such topic."""
        config = self._configs.get(topic)
        return None if config is None else config.topic_id

    def _empty_trash(self) -> None:
        """Remove what ``trash/`` holds (MiniMQ's own: creations and deletions cut short)."""
        if self.trash_dir.is_symlink() or (self.trash_dir.exists() and not self.trash_dir.is_dir()):
            self._move_aside(self.trash_dir, "not MiniMQ's trash directory")
        if not self.trash_dir.exists():
            self.trash_dir.mkdir()
            return
        # Emptied, not removed and made again: on a full disk the new directory
        # might not fit, and then the broker could not start.
        for entry in self.trash_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _move_aside(self, path: Path, reason: str) -> None:
        """Move ``path`` into ``unrecognized/`` (blocking): what MiniMQ did not make, it keeps.

        The rename moves a symbolic link itself, never what it points to.
        """
        self.unrecognized_dir.mkdir(exist_ok=True)
        target = self.unrecognized_dir / f"{path.name[:200]}.{uuid.uuid4().hex[:12]}"
        path.rename(target)
        fsync_dir(path.parent)
        fsync_dir(self.unrecognized_dir)
        log.error(
            "%s: %s; MOVED ASIDE to %s (MiniMQ deletes nothing it did not create): check it",
            path,
            reason,
            target,
        )

    def _partition_count(self) -> int:
        return sum(config.partitions for config in self._configs.values())

    def _check_limits(self, topic: str, config: TopicConfig) -> None:
        limits = self.limits
        if len(self._configs) >= limits.max_topics:
            raise TopicLimitReached(
                f"cannot create topic {topic!r}: the broker holds {len(self._configs)} topics, "
                f"its limit (--max-topics {limits.max_topics}); delete topics to make room"
            )
        in_use = self._partition_count()
        if in_use + config.partitions > limits.max_partitions:
            raise PartitionLimitReached(
                f"cannot create topic {topic!r} with {config.partitions} partition(s): "
                f"{in_use} of the broker's {limits.max_partitions} partitions "
                "(--max-partitions) are in use"
            )

    def _open_partitions(
        self, topic_dir: Path, config: TopicConfig, *, clean: bool
    ) -> list[DiskPartitionLog]:
        fsync = config.fsync or self.default_fsync
        opened: list[DiskPartitionLog] = []
        try:
            for number in range(config.partitions):
                directory = topic_dir / str(number)
                if directory.is_symlink():
                    raise StorageError(
                        f"{directory} is a symbolic link: MiniMQ never follows links under "
                        "topics/ (put the partition's files back in place)"
                    )
                directory.mkdir(exist_ok=True)
                plog = DiskPartitionLog.open(
                    directory, config, fsync, clean=clean, files=self.files
                )
                plog.on_stored = functools.partial(self._stored, topic_dir.name, number)
                opened.append(plog)
        except BaseException:
            for partition in opened:
                partition.close_files()
            raise
        return opened

    def _stage_and_publish(self, topic_dir: Path, config: TopicConfig) -> None:
        """Build the topic's directories and ``topic.json`` in ``trash/``, then rename it in place.

        Blocking.  ``atomic_write`` fsyncs the staging directory, so the
        partition directories and ``topic.json`` are durable before the rename
        makes the topic visible; the fsync of ``topics/`` makes the rename durable.
        """
        staging = self.trash_dir / f"{topic_dir.name[:200]}.{uuid.uuid4().hex}"
        try:
            staging.mkdir()
            for number in range(config.partitions):
                (staging / str(number)).mkdir()
            atomic_write(staging / CONFIG_FILE, config_to_json(config))
            staging.rename(topic_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(self.topics_dir)

    def _discard(self, topic_dir: Path) -> None:
        """Move a topic directory to the trash (atomic), then delete it (blocking)."""
        # At most 200 + 33 characters: a 249-character name plus the suffix would
        # pass the file system's 255.
        target = self.trash_dir / f"{topic_dir.name[:200]}-{uuid.uuid4().hex}"
        topic_dir.rename(target)
        fsync_dir(self.topics_dir)
        try:
            shutil.rmtree(target)
        except OSError as exc:
            # The topic is gone with the rename; the next open empties trash/ again.
            log.warning("%s: not removed yet (%s); the next start removes it", target, exc)

    # ----------------------------------------------------------------- notification

    def add_append_listener(self, listener: AppendListener) -> None:
        """Call ``listener(topic, partition)`` after each append and deleted partition."""
        self._append_listeners.append(listener)

    def _stored(self, topic: str, partition: int) -> None:
        for listener in self._append_listeners:
            listener(topic, partition)

    # ----------------------------------------------------------------- LogStore

    async def topic_names(self) -> list[str]:
        return sorted(self._configs)

    async def topic_config(self, topic: str) -> TopicConfig:
        return self._config(topic)

    def _config(self, topic: str) -> TopicConfig:
        try:
            return self._configs[topic]
        except KeyError:
            raise TopicNotFound(f"topic {topic!r} does not exist") from None

    def validate_topic_name(self, name: str) -> None:
        """The disk engine carries every name the broker's rule accepts (as directory names)."""
        validate_topic_name(name)

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
        self._config(topic)
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
            self._check_limits(topic, config)
            topic_dir = self.topics_dir / topic
            # A new incarnation, whatever the caller's config says: never an old one's id.
            config = dataclasses.replace(config, topic_id=new_topic_id())

            def create() -> list[DiskPartitionLog]:
                if os.path.lexists(topic_dir):
                    raise StorageError(
                        f"cannot create topic {topic!r}: {topic_dir} exists but is not a topic "
                        "(the next start moves it aside)"
                    )
                self._stage_and_publish(topic_dir, config)
                try:
                    return self._open_partitions(topic_dir, config, clean=True)
                except BaseException:
                    # Never leave half a topic behind (open files, a directory that
                    # would make every retry fail): the creation was not acknowledged.
                    try:
                        self._discard(topic_dir)
                    except OSError as exc:
                        log.error("%s: cannot remove a failed creation: %s", topic_dir, exc)
                    raise

            try:
                partitions = await asyncio.get_running_loop().run_in_executor(None, create)
            except OSError as exc:
                # EMFILE (the process is out of descriptors), ENOSPC, EIO...: a
                # storage failure, not a broker bug.  Nothing of the topic is left,
                # so no log has failed.
                raise storage_error(
                    exc, f"cannot create topic {topic!r}", log_failed=False
                ) from exc
            self._configs[topic] = config
            self._partitions[topic] = partitions

    async def delete_topic(self, topic: str) -> None:
        async with self._admin_lock:
            self._config(topic)
            partitions = self._partitions.pop(topic)
            del self._configs[topic]
            try:
                for partition in partitions:
                    await partition.close()
                await asyncio.get_running_loop().run_in_executor(
                    None, self._discard, self.topics_dir / topic
                )
            finally:
                # Gone from memory already: waiters must wake and find it gone.
                for number in range(len(partitions)):
                    self._stored(topic, number)

    async def update_retention(
        self, topic: str, retention_ms: int | None, retention_bytes: int | None
    ) -> TopicConfig:
        """Set ``topic``'s two retention settings (None: unlimited); return the new config.

        Validated as at creation, then ``topic.json`` is replaced atomically
        (same ``topic_id``) before the partitions see the new settings, so the
        next retention pass applies exactly what a restart would read back.
        """
        async with self._admin_lock:
            current = self._config(topic)
            config = validate_config(
                dataclasses.replace(
                    current, retention_ms=retention_ms, retention_bytes=retention_bytes
                )
            )
            path = self.topics_dir / topic / CONFIG_FILE
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, atomic_write, path, config_to_json(config)
                )
            except OSError as exc:
                # The old topic.json is intact (tmp file, rename): nothing changed.
                raise storage_error(
                    exc, f"cannot update topic {topic!r}", log_failed=False
                ) from exc
            self._configs[topic] = config
            for partition in self._partitions[topic]:
                partition.config = config
            return config

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
