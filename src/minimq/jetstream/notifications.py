"""Wake-ups after records are stored, from any gateway: stream RePublish to a notification subject.

Every partition stream republishes the last message of each produce call (the one on its commit
subject, ``names``), headers only, to ``<ns>.ntf.<escaped topic>.<p>``.  RePublish fires after
the message is stored (p99 ≈0.7 ms after the ack, measured), unlike a plain subscription on the
stream's own subject, which sees a message *before* it is stored (1000/1000 times in the
reference) and so cannot mean "readable".  Each gateway holds ONE wildcard subscription,
``<ns>.ntf.>``, decodes topic and partition from the subject, raises its high-water mark for the
stream from ``Nats-Sequence`` and calls the listeners on the event loop.

A call of 1,000 records thus costs each gateway one notification, not 1,000 (republishing every
message made nats-py's header parsing of the notifications the largest cost of an append:
2,200 against 9,000+ records/s).  The commit message is also the one whose storage makes the
whole call readable (a committed batch is applied message by message), so a waiter wakes once
per call and the high-water mark moves only by whole calls; other messages are ignored should
any arrive.  Listeners are called once per partition per burst (``call_soon``).
A topic deletion is announced on the same subjects (header ``Mq-Event: deleted``) by the gateway
that deleted it.  Own appends call the listeners directly as well (``notify_local``), so this
process's waiters do not wait for the round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from minimq.core.storage_seam import AppendListener
from minimq.jetstream.connection import JetStreamConnection
from minimq.jetstream.names import Names

log = logging.getLogger(__name__)

EVENT: Final = "Mq-Event"
BATCH_ID: Final = "Nats-Batch-Id"
BATCH_COMMIT: Final = "Nats-Batch-Commit"
DELETED: Final = "deleted"
STREAM: Final = "Nats-Stream"
SEQUENCE: Final = "Nats-Sequence"


class Notifications:
    """Listeners of one storage and the subscription that feeds them."""

    def __init__(
        self,
        connection: JetStreamConnection,
        names: Names,
        saw_end: Callable[[str, int], None],
    ) -> None:
        self._connection = connection
        self._names = names
        self._saw_end = saw_end
        self._deletion_listeners: list[Callable[[str], None]] = []
        self._listeners: list[AppendListener] = []
        self._due: set[tuple[str, int]] = set()
        self._flush_scheduled = False
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._subscription = await self._connection.client.subscribe(
            self._names.notification_wildcard, cb=self._on_message, pending_msgs_limit=-1
        )

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    def add_listener(self, listener: AppendListener) -> None:
        self._listeners.append(listener)

    def add_deletion_listener(self, listener: Callable[[str], None]) -> None:
        """``listener(topic)`` when any gateway announces the topic's deletion (caches drop it)."""
        self._deletion_listeners.append(listener)

    def notify_local(self, topic: str, partition: int) -> None:
        """Records of ``(topic, partition)`` were stored by this process."""
        self._due.add((topic, partition))
        self._schedule()

    async def announce_deleted(self, topic: str, partitions: int) -> None:
        """Tell every gateway (this one included, through the subscription) the topic is gone."""
        for partition in range(partitions):
            self.notify_local(topic, partition)
            await self._connection.client.publish(
                self._names.notification_subject(topic, partition), b"", headers={EVENT: DELETED}
            )

    async def _on_message(self, msg: Msg) -> None:
        where = self._names.parse_notification(msg.subject)
        if where is None:
            return
        headers = msg.headers or {}
        if headers.get(EVENT) == DELETED:
            for forget in self._deletion_listeners:
                forget(where[0])
        elif BATCH_ID in headers and headers.get(BATCH_COMMIT) != "1":
            # A message inside a call: readable only once the whole call is, which its commit
            # message (republished after it) announces.
            return
        stream = headers.get(STREAM)
        sequence = headers.get(SEQUENCE)
        if stream and sequence and sequence.isdigit():
            self._saw_end(stream, int(sequence))
        self._due.add(where)
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        due, self._due = self._due, set()
        for topic, partition in due:
            for listener in self._listeners:
                try:
                    listener(topic, partition)
                except Exception:
                    log.exception("append listener failed for %s/%d", topic, partition)
