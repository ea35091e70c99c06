"""Producer threads: keyed records at a bounded, shared rate, every acknowledged offset logged.

Each thread has its own :class:`~minimq.client.Client` and sends batches of 1
to ``max_batch`` records with keys from a small key space (so that the keyed
partitioner spreads them over every partition).  A batch the broker
acknowledged is logged as ``produced`` with its ``records``
``[[partition, offset], ...]``: these are the offsets the checker expects to
see delivered.  A batch that failed is logged as ``produce-failed`` and not
retried: whether it is stored does not matter to the checks, which only ask
about acknowledged offsets.

Threads stop within one request timeout of :meth:`ProducerThreads.stop`.
Given several broker URLs, thread ``n`` starts at the ``n``-th
(:func:`~.brokers.urls_for`), so the producers write through every gateway.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

from bench.churn.brokers import urls_for
from bench.churn.history import HistoryWriter

from minimq.client import Client
from minimq.errors import MiniMQError

KEY_SPACE = 64


class ProducerThreads:
    """``count`` producer threads writing ``records_per_second`` in total to ``topic``."""

    def __init__(
        self,
        urls: Sequence[str],
        topic: str,
        history: HistoryWriter,
        *,
        count: int = 2,
        records_per_second: float = 100.0,
        max_batch: int = 5,
        seed: int = 0,
    ) -> None:
        self.urls = list(urls)
        self.topic = topic
        self.history = history
        self.records_per_second = records_per_second
        self.max_batch = max_batch
        self.acknowledged = 0
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next_send = time.monotonic()
        self._threads = [
            threading.Thread(
                target=self._produce,
                args=(number, random.Random(f"{seed}-{number}")),
                name=f"churn-producer-{number}",
                daemon=True,
            )
            for number in range(count)
        ]

    def start(self) -> ProducerThreads:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            raise RuntimeError(f"producer threads did not stop: {alive}")

    def _pace(self, records: int) -> None:
        """Hold all threads together to the rate (one shared schedule of send slots)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_send)
            self._next_send = slot + records / self.records_per_second
        if slot > now:
            self._stop.wait(slot - now)

    def _produce(self, number: int, rng: random.Random) -> None:
        sequence = 0
        with Client(urls_for(number, self.urls), retries=0) as client:
            while not self._stop.is_set():
                count = rng.randint(1, self.max_batch)
                self._pace(count)
                if self._stop.is_set():
                    return
                batch = [
                    {"key": f"k{rng.randrange(KEY_SPACE)}", "value": {"p": number, "n": n}}
                    for n in range(sequence, sequence + count)
                ]
                sequence += count
                try:
                    metadata = client.produce_batch(self.topic, batch)
                except MiniMQError as exc:
                    self.history.write("produce-failed", producer=number, code=exc.code)
                    with self._lock:
                        self.failed += count
                    continue
                self.history.write(
                    "produced",
                    producer=number,
                    records=[[m.partition, m.offset] for m in metadata],
                )
                with self._lock:
                    self.acknowledged += count
