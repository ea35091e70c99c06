"""Idempotent producers: a batch retried after a lost response is stored once.

A small TCP proxy sits between each client and the broker (the broker
advertises the proxy's port, so every connection goes through it). Armed,
it forwards the next Produce request to the broker, waits for the broker's
answer, and instead of relaying it drops the connection: the batch is
stored, the client never hears so, and it sends the same batch again with
the same producer id and sequence. The broker must answer the retry with
the original offset and store nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer
from tests.support.processes import BrokerProcess, free_port

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")

PRODUCE_KEY = 0
TIMEOUT_S = 60.0
VALUES = [b"value-%d" % n for n in range(5)]


class LosingProxy:
    """Forwards TCP to ``target``; when armed, swallows one Produce answer and drops the link."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self.armed = threading.Event()
        self.dropped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", port))
        self._stopping = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            lost: dict[int, bool] = {}
            threading.Thread(
                target=self._requests, args=(client, server, lost), daemon=True
            ).start()
            threading.Thread(target=self._answers, args=(server, client, lost), daemon=True).start()

    @staticmethod
    def _frame(sock: socket.socket) -> bytes | None:
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
            want = 4 - len(data) if len(data) < 4 else 4 + struct.unpack_from(">i", data)[0]
            try:
                chunk = sock.recv(want - len(data) if len(data) >= 4 else want)
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def _requests(self, source: socket.socket, sink: socket.socket, lost: dict[int, bool]) -> None:
        while (frame := self._frame(source)) is not None:
            api_key, _, correlation_id = struct.unpack_from(">hhi", frame, 4)
            if api_key == PRODUCE_KEY and self.armed.is_set():
                self.armed.clear()
                lost[correlation_id] = True
            try:
                sink.sendall(frame)
            except OSError:
                break
        self._close(source, sink)

    def _answers(self, source: socket.socket, sink: socket.socket, lost: dict[int, bool]) -> None:
        while (frame := self._frame(source)) is not None:
            (correlation_id,) = struct.unpack_from(">i", frame, 4)
            if lost.pop(correlation_id, False):
                self.dropped.set()  # stored by the broker; the client never learns it
                break
            try:
                sink.sendall(frame)
            except OSError:
                break
        self._close(source, sink)

    @staticmethod
    def _close(*sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        self._stopping = True
        self._listener.close()
        self._close(*self._sockets)


@pytest.fixture(scope="module")
def proxied(
    backend_broker: Callable[..., BrokerProcess],
) -> Iterator[tuple[BrokerProcess, LosingProxy]]:
    proxy_port = free_port()
    broker = backend_broker(["--kafka-advertised-port", str(proxy_port)], kafka=True)
    proxy = LosingProxy(proxy_port, ("127.0.0.1", broker.kafka_port or 0))
    try:
        yield broker, proxy
    finally:
        proxy.stop()


def stored_values(broker: BrokerProcess, topic: str) -> list[bytes]:
    """Every value of partition 0 (read through the proxy, which is disarmed by now)."""

    consumer = KafkaConsumer(bootstrap_servers=broker.kafka_bootstrap, consumer_timeout_ms=1500)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning()
        return [message.value for message in consumer]
    finally:
        consumer.close()


def run_lossy(proxy: LosingProxy, produce: object) -> None:
    proxy.dropped.clear()
    proxy.armed.set()
    produce()  # type: ignore[operator]
    assert proxy.dropped.is_set(), "the proxy never swallowed a Produce answer"


def topic_name(client: str) -> str:
    return f"idem-{client}-{uuid.uuid4().hex[:6]}"


def test_kafka_python_retry_is_not_duplicated(proxied: tuple[BrokerProcess, LosingProxy]) -> None:
    broker, proxy = proxied
    topic = topic_name("kp")
    producer = KafkaProducer(
        bootstrap_servers=f"127.0.0.1:{proxy.port}",
        enable_idempotence=True,
        linger_ms=50,
        retry_backoff_ms=100,
    )
    try:
        producer.send(topic, b"warm-up").get(TIMEOUT_S)

        def produce() -> None:
            futures = [producer.send(topic, value) for value in VALUES]
            offsets = [f.get(TIMEOUT_S).offset for f in futures]
            assert offsets == list(range(1, 1 + len(VALUES)))

        run_lossy(proxy, produce)
    finally:
        producer.close(timeout=10)
    assert_once(broker, topic)


def test_confluent_kafka_retry_is_not_duplicated(
    proxied: tuple[BrokerProcess, LosingProxy],
) -> None:
    broker, proxy = proxied
    topic = topic_name("cf")
    producer = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{proxy.port}",
            "enable.idempotence": True,
            "linger.ms": 50,
            "retry.backoff.ms": 100,
        }
    )
    reports: list[tuple[object, int]] = []

    def report(error: object, message: object) -> None:
        reports.append((error, message.offset()))  # type: ignore[attr-defined]

    producer.produce(topic, b"warm-up", on_delivery=report)
    assert producer.flush(TIMEOUT_S) == 0

    def produce() -> None:
        for value in VALUES:
            producer.produce(topic, value, on_delivery=report)
        assert producer.flush(TIMEOUT_S) == 0

    run_lossy(proxy, produce)
    assert [error for error, _ in reports] == [None] * (1 + len(VALUES)), reports
    assert [offset for _, offset in reports] == list(range(1 + len(VALUES)))
    assert_once(broker, topic)


def test_aiokafka_retry_is_not_duplicated(proxied: tuple[BrokerProcess, LosingProxy]) -> None:
    broker, proxy = proxied
    topic = topic_name("aio")

    async def main() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=f"127.0.0.1:{proxy.port}",
            enable_idempotence=True,
            linger_ms=50,
            retry_backoff_ms=100,
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"warm-up")
            proxy.dropped.clear()
            proxy.armed.set()
            futures = [await producer.send(topic, value) for value in VALUES]
            results = await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT_S)
            assert [r.offset for r in results] == list(range(1, 1 + len(VALUES)))
            assert proxy.dropped.is_set(), "the proxy never swallowed a Produce answer"
        finally:
            await producer.stop()

    asyncio.run(main())
    assert_once(broker, topic)


def assert_once(broker: BrokerProcess, topic: str) -> None:
    deadline = time.monotonic() + 10
    values = stored_values(broker, topic)
    while len(values) < 1 + len(VALUES) and time.monotonic() < deadline:
        values = stored_values(broker, topic)
    assert values == [b"warm-up", *VALUES], "a retried batch was stored twice, or lost"
