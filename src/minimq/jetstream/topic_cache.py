"""This gateway's copy of the topics bucket, so produce and fetch never wait on its leader.

Why.  Every produce and fetch needs its topic's config (partition count, timestamp bounds,
``topic_id``, which names the streams).  Read from the topics bucket's leader each time, that is
one more round trip per call, and while that leader is cut off from the majority (a network
partition) every produce of the majority waited on it: 1 request acknowledged in 10 s.

How it is kept.  A watch of the bucket (an ordered push consumer, ``deliver_policy`` last per
subject, so it starts with every key's current value and then sees each write once it is
stored) and this gateway's own writes feed :meth:`TopicCache.learned`; an entry is replaced only
by a higher revision, so an old answer arriving late never overwrites a newer one.  A deleted key
is purged, which the watch does not see: deletions arrive as the deleting gateway's notification
(:meth:`TopicCache.deleted`, which also refuses that ``topic_id`` from then on) or are found on
use, since the streams of a deleted incarnation are gone (``stream not found`` ->
:meth:`TopicCache.drop` -> the next lookup reads the leader).

Staleness.  A lookup that misses reads the leader (one read per key at a time, shared by every
waiter) and answers ``TopicNotFound`` only if the leader has no such key.  A hit is answered at
once; if the entry was last confirmed more than :data:`REVALIDATE_AFTER_S` ago, the leader is
asked again in the background (the caller does not wait), so while the leader can be reached an
entry is at most that old plus one read even if the watch is broken; with the watch working,
another gateway's write is seen within milliseconds.  What a stale entry can do: report an old
retention (describe), or route to a deleted incarnation, which fails on use and refreshes.

Not thread-safe: one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext

from minimq.core.topic_config import TopicConfig
from minimq.errors import TopicNotFound
from minimq.jetstream.buckets import LeaderBucket
from minimq.jetstream.connection import JetStreamConnection
from minimq.jetstream.names import unescape
from minimq.jetstream.topics import TopicCatalog, config_from_json

log = logging.getLogger(__name__)

REVALIDATE_AFTER_S: Final = 10.0
# The watch's idle heartbeat: nats-py recreates an ordered consumer after two missed ones.
WATCH_HEARTBEAT_S: Final = 2.0
_WATCH_RETRY_MAX_S: Final = 5.0
# Ids of deleted incarnations remembered so a late watch event cannot bring one back.
_MAX_DEAD_IDS: Final = 10_000
_KV_OPERATION: Final = "KV-Operation"


@dataclass(slots=True)
class _Entry:
    config: TopicConfig
    revision: int
    confirmed: float  # clock time of the last confirmation (leader read, watch, own write)


class TopicCache:
    """Topic configs by name, as this gateway last learned them (see the module docstring)."""

    def __init__(
        self,
        catalog: TopicCatalog,
        bucket: LeaderBucket,
        *,
        revalidate_after_s: float = REVALIDATE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._bucket = bucket
        self._revalidate_after_s = revalidate_after_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._dead_ids: OrderedDict[str, None] = OrderedDict()
        self._reads: dict[str, asyncio.Task[TopicConfig]] = {}
        self._background: set[asyncio.Task[object]] = set()
        self._watch: JetStreamContext.PushSubscription | None = None
        self._watch_starter: asyncio.Task[None] | None = None

    # -- lookups ---------------------------------------------------------------------------

    async def get(self, topic: str) -> TopicConfig:
        """``topic``'s config: from the cache, else from the leader; ``TopicNotFound``."""
        entry = self._entries.get(topic)
        if entry is None:
            return await self.refresh(topic)
        if self._clock() - entry.confirmed > self._revalidate_after_s and topic not in self._reads:
            self._in_background(self.refresh(topic))
        return entry.config

    async def refresh(self, topic: str) -> TopicConfig:
        """Read ``topic`` from the leader now (joining a read already under way)."""
        read = self._reads.get(topic)
        if read is None:
            read = self._reads[topic] = asyncio.ensure_future(self._read_leader(topic))
            read.add_done_callback(lambda _: self._reads.pop(topic, None))
        return await asyncio.shield(read)

    async def _read_leader(self, topic: str) -> TopicConfig:
        try:
            config, revision = await self._catalog.get(topic)
        except TopicNotFound:
            self._entries.pop(topic, None)
            raise
        self.learned(topic, config, revision)
        entry = self._entries.get(topic)
        if entry is None:  # an incarnation deleted while the read was under way
            raise TopicNotFound(f"topic {topic!r} does not exist (any more)")
        return entry.config

    # -- what this gateway learns ------------------------------------------------------------

    def learned(self, topic: str, config: TopicConfig, revision: int) -> None:
        """``config`` is ``topic``'s at ``revision`` (kept unless a newer one is known)."""
        if config.topic_id in self._dead_ids:
            return
        entry = self._entries.get(topic)
        if entry is not None and entry.revision > revision:
            return
        self._entries[topic] = _Entry(config, revision, self._clock())

    def deleted(self, topic: str, topic_id: str | None = None) -> None:
        """``topic`` was deleted (``topic_id``: that incarnation; default: the one cached)."""
        entry = self._entries.pop(topic, None)
        dead = topic_id if topic_id is not None else entry.config.topic_id if entry else None
        if dead is not None:
            self._dead_ids[dead] = None
            while len(self._dead_ids) > _MAX_DEAD_IDS:
                self._dead_ids.popitem(last=False)

    def drop(self, topic: str, topic_id: str) -> None:
        """A stream of incarnation ``topic_id`` was not found: the next lookup asks the leader.

        Not a tombstone: the streams of a topic another gateway is creating right now do not
        exist yet either.
        """
        entry = self._entries.get(topic)
        if entry is not None and entry.config.topic_id == topic_id:
            del self._entries[topic]

    # -- the watch ---------------------------------------------------------------------------

    def start_watch(self, connection: JetStreamConnection) -> None:
        """Start watching the bucket in the background (retried until it is in place)."""
        self._watch_starter = asyncio.ensure_future(self._subscribe(connection))

    async def _subscribe(self, connection: JetStreamConnection) -> None:
        wait = 0.1
        while True:
            try:
                self._watch = await connection.client.jetstream().subscribe(
                    f"$KV.{self._bucket.bucket}.>",
                    stream=self._bucket.stream,
                    cb=self._on_watch,
                    ordered_consumer=True,
                    deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                    idle_heartbeat=WATCH_HEARTBEAT_S,
                )
                return
            except Exception as exc:  # no leader yet, reconnecting...: the cache works without
                log.debug("watching %s failed (%r); retrying", self._bucket.bucket, exc)
            await asyncio.sleep(wait)
            wait = min(wait * 2, _WATCH_RETRY_MAX_S)

    async def _on_watch(self, msg: Msg) -> None:
        prefix = f"$KV.{self._bucket.bucket}."
        try:
            topic = unescape(msg.subject.removeprefix(prefix))
        except ValueError:
            return  # not written by this backend
        operation = (msg.headers or {}).get(_KV_OPERATION)
        if operation is not None or not msg.data:  # a delete marker written by other tools
            self.deleted(topic)
            return
        try:
            config = config_from_json(msg.data)
        except (ValueError, TypeError):
            log.warning("ignoring an unreadable config of topic %r in the topics bucket", topic)
            return
        self.learned(topic, config, msg.metadata.sequence.stream)

    def _in_background(self, work: Awaitable[object]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("revalidating a topic config failed: %s", task.exception())

    async def close(self) -> None:
        tasks: list[asyncio.Future[Any]] = [*self._background, *self._reads.values()]
        if self._watch_starter is not None:
            tasks.append(self._watch_starter)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._watch is not None:
            try:
                await self._watch.unsubscribe()
            except Exception as exc:  # closing anyway
                log.debug("unsubscribing the topics watch: %s", exc)
            self._watch = None
