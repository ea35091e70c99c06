"""One consumer-group member in its own process, so a test can close it or kill -9 it.

``python -m tests.kafka.group_worker CLIENT BOOTSTRAP GROUP TOPIC LOG`` runs a
member of GROUP with the named client library (``kafka-python``, ``aiokafka``,
``confluent-kafka``) and appends one JSON line per event to LOG:

- ``{"event": "assigned", "partitions": [...]}`` after every rebalance,
- ``{"event": "revoked", "partitions": [...]}`` before one,
- ``{"event": "record", "p": 0, "o": 7, "key": "k7", "value": ...}`` per record,
- ``{"event": "committed", "offsets": {"0": 8}}`` after a commit *returned*
  (offsets are the next offsets to read),
- ``{"event": "commit_failed", "error": "..."}`` when the broker refused one,
- ``{"event": "closed"}`` after a clean close on SIGTERM.

Every line carries ``t``, ``time.monotonic()`` (one clock for all processes of
the machine), so the checker can order events of different members. Records
are processed (logged) and then committed synchronously, before the next
poll: what a member logged but did not commit is its *uncommitted tail*, the
only part another member may get again.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import aiokafka
import confluent_kafka

import kafka

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000
# Also the rebalance timeout of the JoinGroup: how long the coordinator waits
# for members to rejoin. Bounded, so a killed member cannot hold a rebalance
# for the client default of 5 minutes.
MAX_POLL_INTERVAL_MS = 20000


class EventLog:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, event: str, **fields: Any) -> None:
        self._stream.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
        self._stream.flush()

    def record(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        self.write(
            "record",
            p=partition,
            o=offset,
            key=None if key is None else key.decode(),
            value=None if value is None else json.loads(value),
        )


class Stop:
    """Set by SIGTERM: the member closes cleanly (and so leaves the group)."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, *_: object) -> None:
        self.requested = True


def run_kafka_python(bootstrap: str, group: str, topic: str, log: EventLog, stop: Stop) -> None:
    class Listener(kafka.ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            log.write("revoked", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            log.write("assigned", partitions=sorted(tp.partition for tp in assigned))

    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=f"worker-{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        max_poll_records=50,
    )
    consumer.subscribe([topic], listener=Listener())
    while not stop.requested:
        batch = consumer.poll(timeout_ms=200)
        offsets = {}
        for tp, records in batch.items():
            for r in records:
                log.record(tp.partition, r.offset, r.key, r.value)
            offsets[tp] = kafka.OffsetAndMetadata(records[-1].offset + 1, "", -1)
        if offsets:
            try:
                consumer.commit(offsets)
            except Exception as exc:  # CommitFailedError after a rebalance: redo later
                log.write("commit_failed", error=repr(exc))
            else:
                log.write(
                    "committed", offsets={tp.partition: o.offset for tp, o in offsets.items()}
                )
    consumer.close()
    log.write("closed")


def run_aiokafka(bootstrap: str, group: str, topic: str, log: EventLog, stop: Stop) -> None:
    class Listener(aiokafka.ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            log.write("revoked", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            log.write("assigned", partitions=sorted(tp.partition for tp in assigned))

    async def main() -> None:
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id=f"worker-{group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        )
        consumer.subscribe([topic], listener=Listener())
        await consumer.start()
        try:
            while not stop.requested:
                batch = await consumer.getmany(timeout_ms=200, max_records=50)
                offsets = {}
                for tp, records in batch.items():
                    for r in records:
                        log.record(tp.partition, r.offset, r.key, r.value)
                    offsets[tp] = records[-1].offset + 1
                if offsets:
                    try:
                        await consumer.commit(offsets)
                    except Exception as exc:
                        log.write("commit_failed", error=repr(exc))
                    else:
                        log.write(
                            "committed", offsets={tp.partition: o for tp, o in offsets.items()}
                        )
        finally:
            await consumer.stop()
        log.write("closed")

    asyncio.run(main())


def run_confluent_kafka(bootstrap: str, group: str, topic: str, log: EventLog, stop: Stop) -> None:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": f"worker-{group}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
            "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
        }
    )

    def on_assign(_: Any, partitions: list[Any]) -> None:
        log.write("assigned", partitions=sorted(tp.partition for tp in partitions))

    def on_revoke(_: Any, partitions: list[Any]) -> None:
        log.write("revoked", partitions=sorted(tp.partition for tp in partitions))

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    while not stop.requested:
        messages = consumer.consume(num_messages=50, timeout=0.2)
        last: dict[int, int] = {}
        for m in messages:
            if m.error():
                log.write("error", error=str(m.error()))
                continue
            log.record(m.partition(), m.offset(), m.key(), m.value())
            last[m.partition()] = m.offset() + 1
        if last:
            try:
                consumer.commit(
                    offsets=[confluent_kafka.TopicPartition(topic, p, o) for p, o in last.items()],
                    asynchronous=False,
                )
            except confluent_kafka.KafkaException as exc:
                log.write("commit_failed", error=str(exc))
            else:
                log.write("committed", offsets=last)
    consumer.close()
    log.write("closed")


CLIENTS: dict[str, Callable[[str, str, str, EventLog, Stop], None]] = {
    "kafka-python": run_kafka_python,
    "aiokafka": run_aiokafka,
    "confluent-kafka": run_confluent_kafka,
}


def main(argv: list[str]) -> None:
    client, bootstrap, group, topic, path = argv
    stop = Stop()
    with open(path, "a", encoding="utf-8") as stream:
        log = EventLog(stream)
        log.write("started", client=client)
        CLIENTS[client](bootstrap, group, topic, log, stop)


if __name__ == "__main__":
    main(sys.argv[1:])
