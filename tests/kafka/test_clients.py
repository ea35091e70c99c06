"""Real Kafka clients against a real broker: produce, consume, compression, admin, versions.

kafka-python 3.x, aiokafka, confluent-kafka (librdkafka bundled) and kcat
(Debian's, librdkafka 2.0.2) each produce keyed and unkeyed records with
headers and read them back, produce with every codec they support (checked
in the stored batch's attributes, so a client that silently sent
uncompressed batches fails), and create and delete topics through their
admin API. The versions each negotiated are read from the broker's DEBUG
log. One broker for the module; every test uses topics of its own.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import struct
import subprocess
import time
import uuid
from collections.abc import Callable

import aiokafka
import aiokafka.admin
import confluent_kafka
import confluent_kafka.admin
import httpx
import kafka.admin
import pytest
from kio.schema.fetch.v11.request import FetchPartition, FetchTopic
from tests.kafka.wire import WireClient
from tests.support.processes import BrokerProcess

import kafka

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")

CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
TIMEOUT_S = 60.0
KCAT = shutil.which("kcat")


@pytest.fixture(scope="module")
def broker(backend_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    return backend_broker(["--log-level", "DEBUG"], kafka=True)


def new_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# The first value compresses well: clients send a batch uncompressed when compressing
# would not make it smaller (librdkafka does), which would hide a dropped codec.
RECORDS = [
    (b"key-1", b"value one " * 200, [("trace", b"abc"), ("n", b"1")]),
    (None, b"unkeyed", [("only", b"header")]),
    (b"key-2", b"", []),
]


def expected() -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
    return [(k, v, list(h)) for k, v, h in RECORDS]


def assert_compressed(broker: BrokerProcess, topic: str, codec: str | None) -> None:
    """The batch of the large first record used ``codec``; others were at most left plain."""
    codecs = stored_codecs(broker, topic)
    wanted = CODECS.get(codec or "", 0)
    assert codecs[0] == wanted and set(codecs) <= {0, wanted}, codecs


def stored_codecs(broker: BrokerProcess, topic: str) -> list[int]:
    """The compression codec of every batch stored in partition 0 (attributes bits 0-2)."""

    with WireClient(broker.kafka_bootstrap) as wire:
        answer = wire.call(
            1,
            11,
            max_wait=datetime.timedelta(0),
            min_bytes=1,
            max_bytes=50 << 20,
            topics=(
                FetchTopic(
                    topic=topic,
                    partitions=(
                        FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=50 << 20),
                    ),
                ),
            ),
            forgotten_topics_data=(),
        )
    records = answer.responses[0].partitions[0].records
    codecs, offset = [], 0
    while offset + 61 <= len(records):
        (length,) = struct.unpack_from(">i", records, offset + 8)
        (attributes,) = struct.unpack_from(">h", records, offset + 21)
        codecs.append(attributes & 0x07)
        offset += 12 + length
    return codecs


def negotiated(broker: BrokerProcess, client_id: str) -> dict[int, list[int]]:
    """API key -> versions requested by ``client_id``, in order of first use."""
    versions: dict[int, list[int]] = {}
    for line in broker.log().splitlines():
        if "kafka request api_key=" not in line or f"client_id={client_id} " not in line:
            continue
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        seen = versions.setdefault(int(fields["api_key"]), [])
        if int(fields["version"]) not in seen:
            seen.append(int(fields["version"]))
    return versions


# -- kafka-python --------------------------------------------------------------------------


def kafka_python_round_trip(broker: BrokerProcess, topic: str, client_id: str, **config):
    producer = kafka.KafkaProducer(
        bootstrap_servers=broker.kafka_bootstrap, client_id=client_id, **config
    )
    try:
        for key, value, headers in RECORDS:
            producer.send(topic, key=key, value=value, headers=headers).get(TIMEOUT_S)
    finally:
        producer.close(timeout=10)
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=broker.kafka_bootstrap, client_id=client_id, consumer_timeout_ms=20_000
    )
    try:
        consumer.assign([kafka.TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        got = []
        for message in consumer:
            got.append((message.key, message.value, list(message.headers), message.offset))
            if len(got) == len(RECORDS):
                break
    finally:
        consumer.close()
    return got


def test_kafka_python_produces_and_consumes_with_headers(broker: BrokerProcess) -> None:
    topic = new_topic("kp")
    got = kafka_python_round_trip(broker, topic, "kp-negotiate")
    assert [(k, v, h) for k, v, h, _ in got] == expected()
    assert [offset for *_, offset in got] == [0, 1, 2]
    versions = negotiated(broker, "kp-negotiate")
    # kafka-python 3.x opens ApiVersions at v4, gets the KIP-511 answer, retries at 2;
    # it is idempotent by default, hence InitProducerId.
    assert versions[18] == [4, 2]
    assert {key: versions[key] for key in (3, 0, 1, 22)} == {3: [8], 0: [8], 1: [11], 22: [1]}


@pytest.mark.parametrize("codec", list(CODECS))
def test_kafka_python_compression(broker: BrokerProcess, codec: str) -> None:
    topic = new_topic(f"kp-{codec}")
    got = kafka_python_round_trip(broker, topic, f"kp-{codec}", compression_type=codec)
    assert [(k, v, h) for k, v, h, _ in got] == expected()
    assert_compressed(broker, topic, codec)


def test_kafka_python_admin_creates_and_deletes_topics(broker: BrokerProcess) -> None:
    topic = new_topic("kp-admin")
    admin = kafka.admin.KafkaAdminClient(bootstrap_servers=broker.kafka_bootstrap)
    try:
        admin.create_topics([kafka.admin.NewTopic(topic, 3, 1)])
        assert topic in admin.list_topics()
        assert http_partitions(broker, topic) == 3
        admin.delete_topics([topic])
        assert topic not in admin.list_topics()
    finally:
        admin.close()
    assert http_partitions(broker, topic) is None


def http_partitions(broker: BrokerProcess, topic: str) -> int | None:
    answer = httpx.get(f"{broker.url}/v1/topics/{topic}", timeout=10)
    if answer.status_code == 404:
        return None
    return int(answer.json()["partitions"])


# -- aiokafka -------------------------------------------------------------------------------


async def aiokafka_round_trip(broker: BrokerProcess, topic: str, **config):
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=broker.kafka_bootstrap, **config)
    await producer.start()
    try:
        for key, value, headers in RECORDS:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=broker.kafka_bootstrap, client_id="aio-c"
    )
    await consumer.start()
    try:
        consumer.assign([aiokafka.TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        got = []
        while len(got) < len(RECORDS):
            message = await asyncio.wait_for(consumer.getone(), TIMEOUT_S)
            got.append((message.key, message.value, list(message.headers), message.offset))
    finally:
        await consumer.stop()
    return got


@pytest.mark.parametrize("codec", [None, *CODECS])
def test_aiokafka_round_trip_and_compression(broker: BrokerProcess, codec: str | None) -> None:
    topic = new_topic(f"aio-{codec}")
    got = asyncio.run(aiokafka_round_trip(broker, topic, compression_type=codec))
    assert [(k, v, h) for k, v, h, _ in got] == expected()
    assert_compressed(broker, topic, codec)


def test_aiokafka_admin_creates_and_deletes_topics(broker: BrokerProcess) -> None:
    topic = new_topic("aio-admin")

    async def run() -> None:
        admin = aiokafka.admin.AIOKafkaAdminClient(bootstrap_servers=broker.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([aiokafka.admin.NewTopic(topic, 2, 1)])
            assert topic in await admin.list_topics()
            await admin.delete_topics([topic])
            assert topic not in await admin.list_topics()
        finally:
            await admin.close()

    asyncio.run(run())
    assert http_partitions(broker, topic) is None


# -- confluent-kafka --------------------------------------------------------------------------


def confluent_round_trip(broker: BrokerProcess, topic: str, client_id: str, **config):
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": broker.kafka_bootstrap, "client.id": client_id, **config}
    )
    reports: list[tuple[object, int]] = []
    for key, value, headers in RECORDS:
        producer.produce(
            topic,
            key=key,
            value=value,
            headers=headers,
            on_delivery=lambda error, message: reports.append((error, message.offset())),
        )
    assert producer.flush(TIMEOUT_S) == 0, "messages still undelivered"
    assert [error for error, _ in reports] == [None] * len(RECORDS), reports
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": broker.kafka_bootstrap,
            "client.id": client_id,
            "group.id": f"{client_id}-unused",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < len(RECORDS) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append(
                (message.key(), message.value(), list(message.headers() or []), message.offset())
            )
    finally:
        consumer.close()
    return got


def test_confluent_kafka_produces_and_consumes_with_headers(broker: BrokerProcess) -> None:
    topic = new_topic("cf")
    got = confluent_round_trip(broker, topic, "cf-negotiate", **{"enable.idempotence": True})
    assert [(k, v, h) for k, v, h, _ in got] == expected()
    versions = negotiated(broker, "cf-negotiate")
    # librdkafka opens ApiVersions at v3 and, on the KIP-511 answer, retries at v0.
    assert versions[18][0] == 3 and versions[18][-1] in (0, 2)
    assert {key: versions[key] for key in (3, 0, 1, 22)} == {3: [8], 0: [8], 1: [11], 22: [1]}


@pytest.mark.parametrize("codec", list(CODECS))
def test_confluent_kafka_compression(broker: BrokerProcess, codec: str) -> None:
    topic = new_topic(f"cf-{codec}")
    got = confluent_round_trip(broker, topic, f"cf-{codec}", **{"compression.type": codec})
    assert [(k, v, h) for k, v, h, _ in got] == expected()
    assert_compressed(broker, topic, codec)


def test_confluent_kafka_admin_creates_and_deletes_topics(broker: BrokerProcess) -> None:
    topic = new_topic("cf-admin")
    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": broker.kafka_bootstrap})
    admin.create_topics([confluent_kafka.admin.NewTopic(topic, 2, 1)])[topic].result(TIMEOUT_S)
    assert topic in admin.list_topics(timeout=TIMEOUT_S).topics
    assert http_partitions(broker, topic) == 2
    admin.delete_topics([topic])[topic].result(TIMEOUT_S)
    assert http_partitions(broker, topic) is None


# -- kcat ---------------------------------------------------------------------------------------


def kcat(
    broker: BrokerProcess, *args: str, data: bytes | None = None
) -> subprocess.CompletedProcess:
    if KCAT is None:
        pytest.fail("NOT RUN: kcat is not installed (apt-get install -y kcat; .ci/run does)")
    return subprocess.run(
        [KCAT, "-b", broker.kafka_bootstrap, *args],
        input=data,
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def kcat_consume(broker: BrokerProcess, topic: str, count: int) -> list[str]:
    done = kcat(
        broker, "-C", "-t", topic, "-o", "beginning", "-e", "-c", str(count),
        "-f", "%k|%s|%h|%o\\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().splitlines()


def test_kcat_produces_to_an_unknown_topic_which_is_created_and_listed(
    broker: BrokerProcess,
) -> None:
    topic = new_topic("kcat")
    produced = kcat(broker, "-P", "-t", topic, "-K:", "-H", "trace=abc", data=b"k1:v1\nv2\n")
    assert produced.returncode == 0, produced.stderr.decode()
    listed = kcat(broker, "-L", "-t", topic)
    assert f'topic "{topic}" with 1 partitions' in listed.stdout.decode(), listed.stdout
    lines = kcat_consume(broker, topic, 2)
    assert lines == ["k1|v1|trace=abc|0", "|v2|trace=abc|1"]


@pytest.mark.parametrize("codec", list(CODECS))
def test_kcat_compression_is_not_silently_dropped(broker: BrokerProcess, codec: str) -> None:
    topic = new_topic(f"kcat-{codec}")
    lines = [letter * 2000 for letter in "abc"]
    produced = kcat(
        broker, "-P", "-t", topic, "-z", codec, "-d", "feature,msg", data="\n".join(lines).encode()
    )
    log = produced.stderr.decode()
    assert produced.returncode == 0, log
    assert "Broker does not support compression type" not in log
    assert kcat_consume(broker, topic, 3) == [f"|{line}||{n}" for n, line in enumerate(lines)]
    assert_compressed(broker, topic, codec)
