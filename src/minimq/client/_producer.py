"""Batching producer: ``send()`` buffers, a background thread sends batches.

Concurrency contract: ``send``, ``flush`` and ``close`` may be called from any
number of threads.  ``max_in_flight`` background threads (``minimq-producer-N``)
own all I/O, sharing one thread-safe :class:`~minimq.client.Client`; each sends
one batch at a time, so up to ``max_in_flight`` batches are on the wire at
once, but never two of the same topic: records of one topic reach the broker
in ``send`` order and keep that order within each partition (also across
retries).  All shared state is guarded by one ``threading.Condition``.

Batching: a topic's buffered records are sent together once ``linger_ms``
passed since the oldest of them was queued, or as soon as ``max_batch_records``
or ``max_batch_bytes`` (JSON size) are reached, or when ``flush()``/``close()``
asks for it.

Back-pressure: at most ``buffer_records`` records are held (buffered or in
flight) at a time; ``send`` blocks while the buffer is full and raises
``TimeoutError`` after ``send_timeout`` seconds.

Delivery: a batch that failed because the broker was unreachable or
overloaded (``BrokerUnavailable``, 503s, timeouts) is sent again after a
capped exponential backoff, up to ``retries`` times (``None``: until it
succeeds or the producer is closed).  A backoff ends early when another batch
got through (the broker is back: a sender must not sleep through the recovery
and leave its topic behind) or when ``flush()``/``close()`` asks for delivery.

Every batch is sent with an ``Idempotency-Key`` of its own (a random UUID),
the same on every retry of it, so the broker stores a batch once however often
it is sent, and after a partial failure (a request whose records went to
several partitions, one of which failed) the retry stores only what is
missing.  That holds while the key is in the broker's window (10 minutes and
10,000 keys per topic by default) and the broker does not restart between two
attempts; a retry after a broker crash may store the batch twice, so delivery
is at-least-once, and exactly-once while the broker stays up.  Given several
broker URLs, a retry may go to another broker (:mod:`minimq.client._failover`):
it is stored once only where the brokers share their window of keys, and a
retry through another broker after a lost answer may otherwise store the
batch twice (at-least-once again).  Other errors (unknown topic with
auto-creation off, a record over the size limit, ...) fail the futures of
that batch.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson

from minimq.client._calls import record_entry
from minimq.client._client import Client
from minimq.client._models import RecordMetadata
from minimq.client._transport import RetryPolicy
from minimq.errors import (
    BrokerUnavailable,
    MiniMQError,
    RequestTimeout,
    StorageError,
    TooManyConnections,
)

log = logging.getLogger("minimq.client.producer")

# Errors after which the same batch may succeed later (a restart, a full queue).
_TRANSIENT = (BrokerUnavailable, TooManyConnections, RequestTimeout, StorageError)

# Per-record envelope in the request body ({"value": ..., "key": ...} plus separators).
_RECORD_OVERHEAD = 32

RecordCallback = Callable[["Future[RecordMetadata]"], object]


@dataclass(slots=True)
class _Pending:
    record: dict[str, Any]
    size: int
    enqueued_at: float
    future: Future[RecordMetadata] = field(default_factory=Future)


@dataclass(slots=True)
class _TopicQueue:
    records: deque[_Pending] = field(default_factory=deque)
    bytes: int = 0


class Producer:
    """Buffers records and sends them in batches from a background thread."""

    def __init__(
        self,
        client_or_url: Client | str | Sequence[str],
        *,
        token: str | None = None,
        linger_ms: float = 5,
        max_batch_records: int = 1000,
        max_batch_bytes: int = 1024 * 1024,
        max_in_flight: int = 4,
        buffer_records: int = 100_000,
        send_timeout: float | None = 60.0,
        retries: int | None = 10,
        max_backoff: float = 5.0,
        request_timeout: float = 10.0,
    ) -> None:
        if min(max_batch_records, buffer_records, max_in_flight) < 1:
            raise ValueError("max_batch_records, buffer_records and max_in_flight must be positive")
        self._owns_client = isinstance(client_or_url, str | Sequence)
        # retries=0: this producer retries batches itself (below); each attempt
        # still tries every broker URL once (minimq.client._failover).
        self._client = (
            Client(client_or_url, token=token, timeout=request_timeout, retries=0)
            if isinstance(client_or_url, str | Sequence)
            else client_or_url
        )
        self._linger = linger_ms / 1000
        self._max_batch_records = max_batch_records
        self._max_batch_bytes = max_batch_bytes
        self._buffer_records = buffer_records
        self._send_timeout = send_timeout
        self._retries = retries
        self._backoff = RetryPolicy(base_delay=0.1, max_delay=max_backoff)
        self._lock = threading.Condition()
        self._topics: dict[str, _TopicQueue] = {}
        self._buffered = 0
        # Topic -> the batch of it being sent; a topic is in here at most once.
        self._in_flight: dict[str, list[_Pending]] = {}
        self._in_flight_records = 0
        self._flushing = 0
        self._closing = False
        self._stop_retrying = False
        # Bumped by every delivery and every flush(): wakes senders sleeping in a backoff.
        self._retry_epoch = 0
        self._broker_down = False
        self._delivered_at = 0.0
        self._senders = [
            threading.Thread(target=self._run, name=f"minimq-producer-{n}", daemon=True)
            for n in range(max_in_flight)
        ]
        for sender in self._senders:
            sender.start()

    @property
    def buffered(self) -> int:
        """Records accepted by ``send`` and not yet acknowledged or failed."""
        with self._lock:
            return self._held()

    def _held(self) -> int:
        return self._buffered + self._in_flight_records

    def send(
        self,
        topic: str,
        value: Any,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        partition: int | None = None,
        *,
        timestamp: int | None = None,
        callback: RecordCallback | None = None,
        timeout: float | None = -1,
    ) -> Future[RecordMetadata]:
        """Queue one record; the future resolves to where it was stored.

        Blocks while the buffer is full, for at most ``timeout`` seconds
        (default: the producer's ``send_timeout``; ``None`` waits forever)
        and then raises ``TimeoutError``.  ``callback`` runs with the finished
        future, on the sender thread.
        """
        record = record_entry(value, key, headers, partition, timestamp)
        pending = _Pending(record, len(orjson.dumps(record)) + _RECORD_OVERHEAD, time.monotonic())
        if callback is not None:
            pending.future.add_done_callback(callback)
        wait = self._send_timeout if timeout == -1 else timeout
        with self._lock:
            if not self._lock.wait_for(
                lambda: self._closing or self._held() < self._buffer_records, wait
            ):
                raise TimeoutError(f"producer buffer full ({self._buffer_records} records)")
            if self._closing:
                raise RuntimeError("producer is closed")
            queue = self._topics.setdefault(topic, _TopicQueue())
            queue.records.append(pending)
            queue.bytes += pending.size
            self._buffered += 1
            # Senders only need waking when this record starts a linger timer or fills a
            # batch; waking them on every send costs more than building the record.
            if len(queue.records) == 1 or self._is_full(queue):
                self._lock.notify_all()
        return pending.future

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now and wait for the outcome; ``False`` on timeout."""
        with self._lock:
            last = [q.records[-1].future for q in self._topics.values() if q.records]
            last += [batch[-1].future for batch in self._in_flight.values() if batch]
            self._flushing += 1
            self._retry_epoch += 1
            self._lock.notify_all()
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            for future in last:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    future.exception(remaining)
                except TimeoutError:
                    return False
            return True
        finally:
            with self._lock:
                self._flushing -= 1

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush for at most about ``timeout`` seconds, then stop.

        Futures of records still buffered then fail with ``BrokerUnavailable``.
        A request already on the wire is not interrupted: if it outlasts the
        timeout, its sender thread (a daemon) finishes it in the background.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self.flush(timeout)
        with self._lock:
            self._closing = True
            self._stop_retrying = True
            self._lock.notify_all()
        for sender in self._senders:
            sender.join(None if deadline is None else max(0.1, deadline - time.monotonic()))
        if self._owns_client and not any(sender.is_alive() for sender in self._senders):
            self._client.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            topic, records = batch
            try:
                if records:
                    self._deliver(topic, records)
            except Exception as exc:
                # The sender must outlive any one batch, or every later send would hang.
                log.exception("unexpected error sending a batch to %s", topic)
                _fail(records, exc)
            with self._lock:
                del self._in_flight[topic]
                self._in_flight_records -= len(records)
                self._lock.notify_all()

    def _next_batch(self) -> tuple[str, list[_Pending]] | None:
        """Wait for a batch that is due and take it out of the buffer (``None``: closed)."""
        with self._lock:
            while True:
                if self._closing:
                    self._fail_buffered()
                    return None
                now = time.monotonic()
                due_topic, wake_at = None, None
                for topic, queue in self._topics.items():
                    if topic in self._in_flight:
                        # Its batch in flight finishing wakes us (notify_all in _run).
                        continue
                    ready_at = queue.records[0].enqueued_at + self._linger
                    if self._is_full(queue) or self._flushing or ready_at <= now:
                        due_topic = topic
                        break
                    wake_at = ready_at if wake_at is None else min(wake_at, ready_at)
                if due_topic is not None:
                    return due_topic, self._take(due_topic)
                self._lock.wait(None if wake_at is None else wake_at - now)

    def _is_full(self, queue: _TopicQueue) -> bool:
        return len(queue.records) >= self._max_batch_records or queue.bytes >= self._max_batch_bytes

    def _take(self, topic: str) -> list[_Pending]:
        queue = self._topics[topic]
        batch: list[_Pending] = []
        taken = size = 0
        while queue.records and taken < self._max_batch_records:
            head = queue.records[0]
            if taken and size + head.size > self._max_batch_bytes:
                break
            queue.records.popleft()
            taken += 1
            size += head.size
            # The executor protocol: a future the caller cancelled is dropped, not sent.
            if head.future.set_running_or_notify_cancel():
                batch.append(head)
        queue.bytes -= size
        if not queue.records:
            # Re-inserting a topic moves it to the end of the dict: topics take turns.
            del self._topics[topic]
        self._buffered -= taken
        self._in_flight[topic] = batch
        self._in_flight_records += len(batch)
        self._lock.notify_all()
        return batch

    def _deliver(self, topic: str, batch: list[_Pending]) -> None:
        attempt = 0
        # One key per batch, kept for every retry: the broker stores the batch once.
        key = uuid.uuid4().hex
        records = [p.record for p in batch]
        while True:
            started = time.monotonic()
            with self._lock:
                epoch = self._retry_epoch
            try:
                metadata = self._client.produce_batch(topic, records, idempotency_key=key)
            except _TRANSIENT as exc:
                if not self._may_retry(attempt, exc, started):
                    _fail(batch, exc)
                    return
                self._back_off(attempt, epoch)
                attempt += 1
                continue
            except MiniMQError as exc:
                _fail(batch, exc)
                return
            if len(metadata) != len(batch):
                _fail(batch, MiniMQError(f"broker acknowledged {len(metadata)} of {len(batch)}"))
                return
            with self._lock:
                recovered, self._broker_down = self._broker_down, False
                self._delivered_at = time.monotonic()
                # _run's notify_all after this batch wakes senders sleeping in a backoff.
                self._retry_epoch += 1
            if recovered:
                log.warning("broker at %s reachable again; delivering", self._client.base_url)
            for pending, meta in zip(batch, metadata, strict=True):
                pending.future.set_result(meta)
            return

    def _may_retry(self, attempt: int, exc: MiniMQError, started: float) -> bool:
        with self._lock:
            # Several senders may fail together; the outage is logged once.  An attempt
            # that started before another sender's success is old news, not a new outage.
            newly_down = not self._broker_down and started >= self._delivered_at
            self._broker_down = self._broker_down or newly_down
            stopping = self._stop_retrying
        if newly_down:
            log.warning("cannot deliver to the broker (%s); buffering and retrying", exc)
        if stopping:
            return False
        return self._retries is None or attempt < self._retries

    def _back_off(self, attempt: int, epoch: int) -> None:
        """Sleep before retry ``attempt``, unless a delivery, flush or close since ``epoch``."""
        with self._lock:
            self._lock.wait_for(
                lambda: self._stop_retrying or self._retry_epoch != epoch,
                self._backoff.backoff(attempt),
            )

    def _fail_buffered(self) -> None:
        error = BrokerUnavailable("producer closed before the record was delivered")
        for queue in self._topics.values():
            _fail(list(queue.records), error)
        self._topics.clear()
        self._buffered = 0


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        future = pending.future
        # In-flight futures are already running; buffered ones may have been cancelled.
        if not future.done() and (future.running() or future.set_running_or_notify_cancel()):
            future.set_exception(exc)
