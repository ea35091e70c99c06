"""The batching Producer against a real broker: nothing lost, order kept, back-pressure."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import cast

import pytest

from minimq.client import Client, Producer, RecordMetadata
from minimq.errors import BrokerUnavailable, TopicNotFound
from tests.support.processes import BrokerProcess, free_port

RECORDS = 100_000


def read_partition(client: Client, topic: str, partition: int) -> list[int]:
    values: list[int] = []
    offset = 0
    while True:
        page = client.fetch(topic, partition, offset=offset, limit=10_000)
        if not page.records:
            return values
        values.extend(r.value["n"] for r in page.records)
        offset = page.next_offset


def test_hundred_thousand_records_none_lost_order_kept(shared_broker: BrokerProcess) -> None:
    with Client(shared_broker.url) as client:
        client.create_topic("bulk", partitions=4)
        futures: list[Future[RecordMetadata]] = []
        with Producer(client, linger_ms=5, max_batch_records=2000) as producer:
            for n in range(RECORDS):
                # Keys pin each of 16 streams to one partition: its order must survive.
                futures.append(producer.send("bulk", {"n": n}, key=f"stream-{n % 16}"))
        metadata = [f.result(timeout=0) for f in futures]

        by_partition: dict[int, list[int]] = defaultdict(list)
        for n, meta in enumerate(metadata):
            by_partition[meta.partition].append(n)
        stored = {p: read_partition(client, "bulk", p) for p in range(4)}
        assert sum(len(v) for v in stored.values()) == RECORDS
        for partition, values in stored.items():
            assert values == by_partition[partition], f"partition {partition} out of order"
            offsets = [m.offset for m in metadata if m.partition == partition]
            assert offsets == list(range(len(values)))


def test_batches_of_several_topics_in_flight_keep_each_topics_order(
    shared_broker: BrokerProcess,
) -> None:
    topics = [f"in-flight-{t}" for t in range(6)]
    with Client(shared_broker.url) as client:
        with Producer(client, linger_ms=1, max_batch_records=25, max_in_flight=4) as producer:
            futures = [producer.send(topic, {"n": n}) for n in range(1_000) for topic in topics]
        assert all(f.result(timeout=0).partition == 0 for f in futures)
        for topic in topics:
            assert read_partition(client, topic, 0) == list(range(1_000)), topic


def test_max_in_flight_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        Producer("http://127.0.0.1:1", max_in_flight=0)


def test_callback_and_flush(shared_broker: BrokerProcess) -> None:
    done = threading.Event()
    seen: list[RecordMetadata] = []

    def on_done(future: Future[RecordMetadata]) -> None:
        seen.append(future.result())
        done.set()

    with Producer(shared_broker.url, linger_ms=60_000) as producer:
        future = producer.send("flushed", "v", callback=on_done)
        assert not future.done()  # lingering: a minute unless flushed
        assert producer.flush(timeout=10)
        assert done.wait(5)
    assert seen == [RecordMetadata("flushed", 0, 0)]


def test_permanent_errors_fail_the_future(tmp_path: Path) -> None:
    data = tmp_path / "strict"
    data.mkdir()
    with (
        BrokerProcess(data, ["--no-auto-create-topics"]) as broker,
        Producer(broker.url) as producer,
    ):
        future = producer.send("missing", 1)
        with pytest.raises(TopicNotFound):
            future.result(timeout=10)


def test_full_buffer_blocks_send_then_times_out() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: every batch is retried
    producer = Producer(url, buffer_records=3, max_batch_records=1, retries=None)
    futures = [producer.send("t", i) for i in range(3)]
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        producer.send("t", 3, timeout=0.3)
    assert time.monotonic() - started >= 0.3
    producer.close(timeout=0.5)
    for future in futures:
        with pytest.raises(BrokerUnavailable):
            future.result(timeout=1)


def test_retries_through_a_broker_restart(data_dir: Path) -> None:
    broker = BrokerProcess(data_dir).start()
    try:
        with Producer(broker.url, retries=None, max_backoff=0.5) as producer:
            first = producer.send("restart", "before")
            assert first.result(timeout=10).offset == 0
            broker.stop()
            during = [producer.send("restart", i) for i in range(10)]
            time.sleep(0.5)
            broker.start()
            assert [f.result(timeout=20).offset for f in during] == list(range(1, 11))
    finally:
        broker.stop()


class FlakyBroker:
    """Stands in for a Client: produce fails with BrokerUnavailable while ``down``."""

    base_url = "http://flaky.invalid"

    def __init__(self) -> None:
        self.down = True
        self.attempts: dict[str, int] = defaultdict(int)
        self.keys: list[tuple[str, str | None]] = []

    def produce_batch(
        self,
        topic: str,
        records: list[dict[str, object]],
        *,
        idempotency_key: str | None = None,
    ) -> list[RecordMetadata]:
        self.attempts[topic] += 1
        self.keys.append((topic, idempotency_key))
        if self.down:
            raise BrokerUnavailable("connection refused")
        return [RecordMetadata(topic, 0, n) for n in range(len(records))]

    def close(self) -> None:
        pass


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def long_backoffs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every retry backoff lasts a minute: only a wake-up can make a retry happen sooner."""
    monkeypatch.setattr(random, "uniform", lambda low, high: 60.0)


@pytest.mark.usefixtures("long_backoffs")
def test_a_delivery_wakes_the_senders_backing_off() -> None:
    broker = FlakyBroker()
    producer = Producer(cast(Client, broker), linger_ms=0, max_backoff=60)
    try:
        stalled = producer.send("a", 1)
        wait_for(lambda: broker.attempts["a"] == 1)  # its sender now sleeps a minute
        broker.down = False
        assert producer.send("b", 2).result(timeout=5).topic == "b"
        # The broker is back: the sender of "a" must not sleep through it.
        assert stalled.result(timeout=5) == RecordMetadata("a", 0, 0)
        assert broker.attempts["a"] == 2
    finally:
        producer.close(timeout=1)


@pytest.mark.usefixtures("long_backoffs")
def test_flush_and_close_cut_a_backoff_short() -> None:
    broker = FlakyBroker()
    producer = Producer(cast(Client, broker), linger_ms=0, max_backoff=60)
    stalled = producer.send("a", 1)
    wait_for(lambda: broker.attempts["a"] == 1)
    broker.down = False
    assert producer.flush(timeout=5)
    assert stalled.result(timeout=0) == RecordMetadata("a", 0, 0)

    broker.down = True
    lost = producer.send("a", 2)
    wait_for(lambda: broker.attempts["a"] == 3)
    started = time.monotonic()
    producer.close(timeout=0.5)
    assert time.monotonic() - started < 5  # not the minute of the backoff
    with pytest.raises(BrokerUnavailable):
        lost.result(timeout=0)


@pytest.mark.usefixtures("long_backoffs")
def test_every_batch_has_its_own_idempotency_key_kept_on_every_retry() -> None:
    broker = FlakyBroker()
    producer = Producer(cast(Client, broker), linger_ms=0, max_backoff=60)
    try:
        first = producer.send("a", 1)
        wait_for(lambda: broker.attempts["a"] == 1)
        broker.down = False
        assert producer.flush(timeout=5)  # the retry, cut short
        assert first.result(timeout=0) == RecordMetadata("a", 0, 0)
        producer.send("a", 2).result(timeout=5)
    finally:
        producer.close(timeout=1)
    keys = [key for _, key in broker.keys]
    assert len(keys) == 3 and all(keys), keys
    assert keys[0] == keys[1], "a retry must reuse its batch's key"
    assert keys[2] != keys[0], "a new batch needs a new key"


class AnswerDroppingProxy:
    """A TCP proxy to the broker that loses the broker's first ``drops`` answers.

    The request reaches the broker, which stores it and answers; the client
    sees its connection close without an answer (an unknown outcome).
    """

    def __init__(self, upstream_port: int, drops: int = 1) -> None:
        self.upstream_port = upstream_port
        self.drops = drops
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                self._sockets += [client, upstream]
                threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
                threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)

    def _answers(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                with self._lock:
                    drop = self.dropped < self.drops
                    self.dropped += drop
                if drop:
                    client.close()
                    upstream.close()
                    return
                client.sendall(data)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_a_batch_whose_answer_was_lost_is_stored_once(shared_broker: BrokerProcess) -> None:
    """Issue #17, defect 6: the retry carries the batch's key, so the broker stores it once."""
    proxy = AnswerDroppingProxy(shared_broker.port, drops=1)
    try:
        with Producer(f"http://127.0.0.1:{proxy.port}", linger_ms=200) as producer:
            futures = [producer.send("lost-answer", {"n": n}) for n in range(5)]
            metadata = [future.result(timeout=30) for future in futures]
        assert proxy.dropped == 1, "the first answer must have been lost"
    finally:
        proxy.close()
    assert [m.offset for m in metadata] == [0, 1, 2, 3, 4]
    with Client(shared_broker.url) as client:
        assert read_partition(client, "lost-answer", 0) == [0, 1, 2, 3, 4]
