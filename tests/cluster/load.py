"""Concurrent HTTP producers and readers through gateways, bounded in count and time.

Each producer thread has its own :class:`minimq.client.Client` over the URLs it is given (several
for failover) and sends batches under an ``Idempotency-Key`` that is new per request and kept
for every retry of it: the client retries an unknown outcome itself, and when it gives up the
thread sends the very same request again (same key, same records) until it is acknowledged or
the load stops.  So a record is stored twice only where a retry reached a broker that did not
know the key (another gateway, or the same one restarted): what "duplicated beyond client
retries" means.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from minimq.client import Client
from tests.cluster.history import ProduceHistory


@dataclass
class Request:
    """One produce request's life: when first sent, when acknowledged, how often it failed."""

    key: str
    ids: list[str]
    started: float
    acked: float | None = None
    failures: int = 0


@dataclass
class ProducerFleet:
    """``count`` producer threads; producer ``i`` uses ``url_lists[i % len(url_lists)]``."""

    url_lists: Sequence[Sequence[str]]
    topic: str
    history: ProduceHistory
    count: int = 4
    batch: int = 10
    name: str = "p"  # prefix of every key and record id: fleets sharing a topic differ in it
    max_requests: int = 100_000  # per producer: a bound whatever the time
    client_timeout_s: float = 10.0
    client_retries: int = 3
    requests: list[Request] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ProducerFleet:
        for index in range(self.count):
            urls = list(self.url_lists[index % len(self.url_lists)])
            thread = threading.Thread(
                target=self._produce, args=(index, urls), name=f"producer-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise AssertionError(f"producer threads did not stop within {timeout_s} s: {alive}")

    def acked_requests(self, sent_from: float, acked_before: float) -> list[Request]:
        """Requests first sent at or after ``sent_from``, acknowledged before ``acked_before``."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.started >= sent_from and r.acked is not None and r.acked < acked_before
            ]

    def in_flight_at(self, moment: float) -> set[str]:
        """Ids of requests sent before ``moment`` and not acknowledged by then."""
        with self._lock:
            return {
                record_id
                for r in self.requests
                if r.started <= moment and (r.acked is None or r.acked >= moment)
                for record_id in r.ids
            }

    def _produce(self, index: int, urls: list[str]) -> None:
        with Client(urls, timeout=self.client_timeout_s, retries=self.client_retries) as client:
            for number in range(self.max_requests):
                if self._stop.is_set():
                    return
                key = f"{self.name}{index}-{number}"
                ids = [f"{key}-{n}" for n in range(self.batch)]
                request = Request(key, ids, time.monotonic())
                with self._lock:
                    self.requests.append(request)
                records: list[dict[str, Any]] = [{"value": {"id": i}, "partition": 0} for i in ids]
                while not self._stop.is_set():
                    try:
                        answer = client.produce_batch(self.topic, records, idempotency_key=key)
                    except Exception as exc:  # counted by kind; the same request goes again
                        request.failures += 1
                        self.history.failed(exc)
                        self._stop.wait(0.05)
                        continue
                    request.acked = time.monotonic()
                    self.history.acked(
                        ids, [m.offset for m in answer], retried=request.failures > 0
                    )
                    break


@dataclass
class Reader:
    """One thread reading partition 0 forward through ``urls`` (failover), counting records."""

    urls: Sequence[str]
    topic: str
    read: int = 0
    failures: int = 0
    last_read_at: float = 0.0
    next_offset: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Reader:
        self._thread = threading.Thread(target=self._read, name="reader", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise AssertionError(f"reader did not stop within {timeout_s} s")

    def _read(self) -> None:
        with Client(list(self.urls), timeout=10, retries=3) as client:
            while not self._stop.is_set():
                try:
                    page = client.fetch(
                        self.topic, 0, offset=self.next_offset, limit=500, wait_ms=200
                    )
                except Exception:  # counted; read again from the same offset
                    self.failures += 1
                    self._stop.wait(0.05)
                    continue
                if page.records:
                    self.read += len(page.records)
                    self.last_read_at = time.monotonic()
                self.next_offset = page.next_offset
