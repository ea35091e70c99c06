"""One log, two transports: what one side writes the other reads identically.

- Produced over HTTP (the batch API, with keys, headers and timestamps),
  consumed with kafka-python and kcat: same partitions, offsets, keys,
  values (the stored JSON bytes), headers and timestamps.
- Produced with kafka-python and confluent-kafka (compressed too), read over
  HTTP fetch and ``/consume``: a value that is strict JSON comes back as JSON
  in ``value``, anything else as base64 in ``value_b64`` (keys likewise in
  ``key_b64``, header values in ``headers_b64``).
- A Kafka group's committed offsets and lag in ``GET /v1/groups/{g}``.
- A group has one protocol: an HTTP member cannot join a Kafka group, nor the
  reverse (INCONSISTENT_GROUP_PROTOCOL, 409 over HTTP and 23 over Kafka).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.kafka.raw_client import RawKafka
from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")

kafka = pytest.importorskip("kafka", reason="NOT RUN: kafka-python is not installed")
confluent_kafka = pytest.importorskip(
    "confluent_kafka", reason="NOT RUN: confluent-kafka is not installed"
)

WAIT_S = 60.0


@pytest.fixture(scope="module")
def kafka_broker(backend_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    return backend_broker(kafka=True)


def _create(broker: BrokerProcess, topic: str, partitions: int) -> None:
    created = httpx.post(
        f"{broker.url}/v1/topics", json={"name": topic, "partitions": partitions}, timeout=30
    )
    assert created.status_code == 201, created.text


# -- HTTP -> Kafka ------------------------------------------------------------------

HTTP_VALUES: list[Any] = [
    {"temperature": 21.5, "unit": "C"},
    "plain string",
    42,
    [1, 2, {"nested": ["a", None, True]}],
    "ünïcødé ✓",
    None,
    3.25,
    {"empty": {}},
]


def _http_records() -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    records: list[dict[str, Any]] = []
    for n, value in enumerate(HTTP_VALUES * 3):
        record: dict[str, Any] = {"value": value, "timestamp": now - 1000 * n, "partition": n % 3}
        if n % 2 == 0:
            record["key"] = f"key-{n}"
        if n % 3 != 1:
            record["headers"] = {"source": "http", "n": str(n), "ünï": "çødé"}
        records.append(record)
    return records


def _produce_http(broker: BrokerProcess, topic: str) -> list[dict[str, Any]]:
    """The records produced, each with the partition and offset the broker gave it."""
    records = _http_records()
    response = httpx.post(
        f"{broker.url}/v1/topics/{topic}/records", json={"records": records}, timeout=30
    )
    assert response.status_code == 200, response.text
    for record, place in zip(records, response.json()["offsets"], strict=True):
        record["offset"] = place["offset"]
        assert place["partition"] == record["partition"]
    return records


def _http_stored_values(broker: BrokerProcess, topic: str) -> dict[tuple[int, int], Any]:
    found = {}
    for p in range(3):
        body = httpx.get(
            f"{broker.url}/v1/topics/{topic}/partitions/{p}/records",
            params={"offset": "earliest", "limit": 1000},
            timeout=30,
        ).json()
        for r in body["records"]:
            found[(p, r["offset"])] = r
    return found


def test_http_produced_records_read_identically_with_kafka_python(
    kafka_broker: BrokerProcess,
) -> None:
    topic = "http-to-kafka-python"
    _create(kafka_broker, topic, 3)
    produced = _produce_http(kafka_broker, topic)
    over_http = _http_stored_values(kafka_broker, topic)

    consumer = kafka.KafkaConsumer(
        bootstrap_servers=kafka_broker.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        consumer.assign([kafka.TopicPartition(topic, p) for p in range(3)])
        got: dict[tuple[int, int], Any] = {}
        deadline = time.monotonic() + WAIT_S
        while len(got) < len(produced) and time.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=500).items():
                for m in messages:
                    got[(tp.partition, m.offset)] = m
    finally:
        consumer.close()
    assert len(got) == len(produced), f"read {len(got)} of {len(produced)} over Kafka"
    for record in produced:
        m = got[(record["partition"], record["offset"])]
        assert m.key == (record["key"].encode() if "key" in record else None)
        assert m.timestamp == record["timestamp"]
        assert json.loads(m.value) == record["value"]
        # The same JSON bytes the HTTP API serves for it.
        assert json.loads(m.value) == over_http[(record["partition"], record["offset"])]["value"]
        expected_headers = [(k, v.encode()) for k, v in record.get("headers", {}).items()]
        assert sorted(m.headers) == sorted(expected_headers)


def test_http_produced_records_read_identically_with_kcat(kafka_broker: BrokerProcess) -> None:
    if shutil.which("kcat") is None:
        pytest.fail("NOT RUN: kcat is not installed (apt-get install -y kcat)")
    topic = "http-to-kcat"
    _create(kafka_broker, topic, 3)
    produced = _produce_http(kafka_broker, topic)
    out = subprocess.run(
        ["kcat", "-b", kafka_broker.kafka_bootstrap, "-C", "-t", topic, "-o", "beginning",
         "-e", "-J", "-q"],
        capture_output=True,
        timeout=WAIT_S,
        check=True,
    )  # fmt: skip
    got = {}
    for line in out.stdout.decode().splitlines():
        m = json.loads(line)
        got[(m["partition"], m["offset"])] = m
    assert len(got) == len(produced), out.stderr.decode()[-2000:]
    for record in produced:
        m = got[(record["partition"], record["offset"])]
        assert m["key"] == record.get("key"), m
        assert m["ts"] == record["timestamp"]
        assert json.loads(m["payload"]) == record["value"]
        # kcat -J lists headers flat: [name, value, name, value, ...]
        flat = m.get("headers") or []
        headers = dict(zip(flat[::2], flat[1::2], strict=True))
        assert headers == record.get("headers", {})


# -- Kafka -> HTTP ------------------------------------------------------------------

KAFKA_RECORDS: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = [
    (b"json-key", b'{"a": 1, "b": [true, null]}', [("h", b"v")]),
    (None, b"12.5", []),
    (b"text", b"plain text, not JSON", [("content-type", b"text/plain")]),
    (b"\xff\xfe-not-utf8", b"\x00\x01\x02binary", [("raw", b"\xff\x00")]),
    (b"tombstone", None, []),
    (b"empty", b"", []),
    (b"nan", b"NaN", []),
]


def _expected_json(record: dict[str, Any], key: bytes | None, value: bytes | None) -> None:
    """Check one HTTP record against what a Kafka client produced (the value rule)."""
    if key is None:
        assert record["key"] is None and "key_b64" not in record
    else:
        try:
            assert record["key"] == key.decode() and "key_b64" not in record
        except UnicodeDecodeError:
            assert record["key"] is None and base64.b64decode(record["key_b64"]) == key
    if value is None:
        assert record["value"] is None and "value_b64" not in record, record
        return
    try:
        parsed = json.loads(value, parse_constant=_refuse)
    except ValueError:
        assert record["value"] is None and "value_b64" in record, record
        assert base64.b64decode(record["value_b64"]) == value
    else:
        assert record["value"] == parsed and "value_b64" not in record, record


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not strict JSON")


def _headers_of(record: dict[str, Any]) -> list[tuple[str, bytes]]:
    headers = [(k, v.encode()) for k, v in (record.get("headers") or {}).items()]
    headers += [(k, base64.b64decode(v)) for k, v in (record.get("headers_b64") or {}).items()]
    return sorted(headers)


def _read_http(broker: BrokerProcess, topic: str) -> list[dict[str, Any]]:
    body = httpx.get(
        f"{broker.url}/v1/topics/{topic}/partitions/0/records",
        params={"offset": "earliest", "limit": 1000},
        timeout=30,
    )
    assert body.status_code == 200, body.text
    records: list[dict[str, Any]] = body.json()["records"]
    return records


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_kafka_python_produced_records_read_over_http(
    kafka_broker: BrokerProcess, compression: str | None
) -> None:
    topic = f"kafka-python-to-http-{compression or 'none'}"
    _create(kafka_broker, topic, 1)
    producer = kafka.KafkaProducer(
        bootstrap_servers=kafka_broker.kafka_bootstrap, compression_type=compression, linger_ms=50
    )
    timestamp = int(time.time() * 1000) - 5000
    try:
        futures = [
            producer.send(topic, key=k, value=v, headers=h, partition=0, timestamp_ms=timestamp + i)
            for i, (k, v, h) in enumerate(KAFKA_RECORDS)
        ]
        offsets = [f.get(timeout=WAIT_S).offset for f in futures]
    finally:
        producer.close()
    records = _read_http(kafka_broker, topic)
    assert [r["offset"] for r in records] == offsets
    for i, (record, (key, value, headers)) in enumerate(zip(records, KAFKA_RECORDS, strict=True)):
        _expected_json(record, key, value)
        assert record["timestamp"] == timestamp + i
        assert _headers_of(record) == sorted(headers)


@pytest.mark.parametrize("compression", ["none", "snappy", "lz4", "zstd"])
def test_confluent_kafka_produced_records_read_over_http_and_consume(
    kafka_broker: BrokerProcess, compression: str
) -> None:
    topic = f"confluent-to-http-{compression}"
    _create(kafka_broker, topic, 1)
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": kafka_broker.kafka_bootstrap,
            "compression.type": compression,
            "linger.ms": 20,
        }
    )
    delivered: list[tuple[int, int]] = []
    errors: list[str] = []

    def report(err: Any, message: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append((message.offset(), message.timestamp()[1]))

    timestamp = int(time.time() * 1000) - 5000
    for i, (key, value, headers) in enumerate(KAFKA_RECORDS):
        producer.produce(
            topic, value=value, key=key, headers=headers, partition=0,
            timestamp=timestamp + i, on_delivery=report,
        )  # fmt: skip
    assert producer.flush(WAIT_S) == 0, "undelivered messages"
    assert errors == []
    records = _read_http(kafka_broker, topic)
    assert [(r["offset"], r["timestamp"]) for r in records] == sorted(delivered)
    for record, (key, value, headers) in zip(records, KAFKA_RECORDS, strict=True):
        _expected_json(record, key, value)
        assert _headers_of(record) == sorted(headers)

    # The original /consume follows the same rule with message / message_b64.
    for _, value, _ in KAFKA_RECORDS:
        answer = httpx.get(
            f"{kafka_broker.url}/consume", params={"topic": topic, "consumer_id": "legacy"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if value is None:
            assert body["message"] is None and "message_b64" not in body
        elif "message_b64" in body:
            assert base64.b64decode(body["message_b64"]) == value
        else:
            assert body["message"] == json.loads(value)


# -- groups across transports ------------------------------------------------------


def test_kafka_group_lag_in_http_describe(kafka_broker: BrokerProcess) -> None:
    topic, group = "lag-topic", "kafka-lag-group"
    _create(kafka_broker, topic, 2)
    records = [{"value": n, "partition": n % 2} for n in range(20)]
    assert (
        httpx.post(
            f"{kafka_broker.url}/v1/topics/{topic}/records", json={"records": records}
        ).status_code
        == 200
    )
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": kafka_broker.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
        }
    )
    try:
        consumer.subscribe([topic])
        seen = 0
        deadline = time.monotonic() + WAIT_S
        while seen < 20 and time.monotonic() < deadline:
            seen += sum(1 for m in consumer.consume(20, timeout=0.5) if not m.error())
        assert seen == 20
        consumer.commit(
            offsets=[
                confluent_kafka.TopicPartition(topic, 0, 4),
                confluent_kafka.TopicPartition(topic, 1, 10),
            ],
            asynchronous=False,
        )
        described = httpx.get(f"{kafka_broker.url}/v1/groups/{group}", timeout=30).json()
        assert described["protocol_type"] == "kafka", described
        assert described["state"] == "Stable", described
        assert [m["topic"] for m in described["members"]] == [topic], described
        offsets = {o["partition"]: o for o in described["offsets"] if o["topic"] == topic}
        assert offsets[0]["committed_offset"] == 4 and offsets[0]["lag"] == 6
        assert offsets[1]["committed_offset"] == 10 and offsets[1]["lag"] == 0
        assert described["total_lag"] == 6
        listed = httpx.get(f"{kafka_broker.url}/v1/groups", timeout=30).json()["groups"]
        assert {"group": group, "total_lag": 6} in [
            {"group": g["group"], "total_lag": g["total_lag"]} for g in listed
        ]
    finally:
        consumer.close()


def test_http_member_cannot_join_a_kafka_group(kafka_broker: BrokerProcess) -> None:
    topic, group = "mixed-a", "kafka-first"
    _create(kafka_broker, topic, 1)
    consumer = kafka.KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.kafka_bootstrap,
        group_id=group,
        session_timeout_ms=10000,
        enable_auto_commit=False,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert consumer.assignment(), "the Kafka member never got its partition"
        joined = httpx.post(
            f"{kafka_broker.url}/v1/groups/{group}/join", json={"topic": topic}, timeout=30
        )
        assert joined.status_code == 409, joined.text
        assert joined.json()["error"]["code"] == "INCONSISTENT_GROUP_PROTOCOL"
    finally:
        consumer.close()


def test_an_empty_group_changes_hands_with_its_commits(kafka_broker: BrokerProcess) -> None:
    """HTTP members commit and leave; Kafka consumers of the group resume from the commit."""
    topic, group = "handover", "handover-group"
    _create(kafka_broker, topic, 1)
    records = {"records": [{"value": n} for n in range(10)]}
    assert httpx.post(f"{kafka_broker.url}/v1/topics/{topic}/records", json=records).is_success
    url = f"{kafka_broker.url}/v1/groups/{group}"
    joined = httpx.post(f"{url}/join", json={"topic": topic, "member_id": "http-1"}).json()
    committed = httpx.post(
        f"{url}/commit",
        json={
            "member_id": "http-1",
            "generation": joined["generation"],
            "offsets": [{"topic": topic, "partition": 0, "offset": 6}],
        },
    )
    assert committed.status_code == 200, committed.text
    assert httpx.post(f"{url}/leave", json={"topic": topic, "member_id": "http-1"}).is_success

    consumer = kafka.KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.kafka_bootstrap,
        group_id=group,
        session_timeout_ms=10000,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        got: list[int] = []
        deadline = time.monotonic() + WAIT_S
        while len(got) < 4 and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=500).values():
                got.extend(m.offset for m in messages)
    finally:
        consumer.close()
    assert got == [6, 7, 8, 9], "the Kafka consumer did not resume from the HTTP commit"


def test_kafka_member_cannot_join_an_http_group(kafka_broker: BrokerProcess) -> None:
    topic, group = "mixed-b", "http-first"
    _create(kafka_broker, topic, 1)
    joined = httpx.post(
        f"{kafka_broker.url}/v1/groups/{group}/join", json={"topic": topic}, timeout=30
    )
    assert joined.status_code == 200, joined.text

    async def kafka_join() -> int:
        raw = await RawKafka.connect("127.0.0.1", kafka_broker.kafka_port)
        try:
            request = kafka.protocol.consumer.JoinGroupRequest(
                group_id=group,
                session_timeout_ms=10000,
                rebalance_timeout_ms=10000,
                member_id="",
                protocol_type="consumer",
                protocols=[
                    kafka.protocol.consumer.JoinGroupRequest.JoinGroupRequestProtocol(
                        name="range", metadata=b""
                    )
                ],
            )
            return int((await raw.send(request, version=2)).error_code)
        finally:
            await raw.close()

    assert asyncio.run(kafka_join()) == 23  # INCONSISTENT_GROUP_PROTOCOL
