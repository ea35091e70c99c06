"""SASL/PLAIN on the Kafka port of a broker with ``--token``: no way around the token.

Each client authenticates with any user name and the token as password and
works; without SASL, or with a wrong password, it gets an authentication or
authorization error. On a raw socket, every data API sent before
authenticating is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import struct
import subprocess
import uuid
from collections.abc import Callable

import aiokafka.errors
import httpx
import kafka.errors
import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import KafkaError, Producer
from tests.kafka.test_wire import (
    batch,
    create_fields,
    fetch_fields,
    list_offsets_fields,
    metadata_fields,
    produce_fields,
)
from tests.kafka.wire import WireClient, raw_frame, request_frame
from tests.support.processes import BrokerProcess

from kafka import KafkaProducer

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")

TOKEN = "kafka-sasl-secret"
TIMEOUT_S = 60.0
SASL_AUTHENTICATION_FAILED, TOPIC_AUTHORIZATION_FAILED = 58, 29


@pytest.fixture(scope="module")
def broker(backend_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    return backend_broker(kafka=True, env={"MINIMQ_TOKEN": TOKEN})


def http_topics(broker: BrokerProcess) -> str:
    answer = httpx.get(
        f"{broker.url}/v1/topics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert answer.status_code == 200
    return answer.text


def plain(password: str, user: str = "anyone") -> bytes:
    return b"\0" + user.encode() + b"\0" + password.encode()


def authenticate(wire: WireClient, password: str) -> object:
    handshake = wire.call(17, 1, mechanism="PLAIN")
    assert handshake.error_code == 0 and handshake.mechanisms == ("PLAIN",)
    return wire.call(36, 1, 2, auth_bytes=plain(password))


# -- raw socket -----------------------------------------------------------------------------


def test_data_apis_are_refused_before_authentication(broker: BrokerProcess) -> None:
    topic = f"sasl-raw-{uuid.uuid4().hex[:6]}"
    with WireClient(broker.kafka_bootstrap) as wire:
        assert wire.call(18, 2).error_code == 0  # ApiVersions is open
        metadata = wire.call(3, 8, **metadata_fields(topic))
        assert [t.error_code for t in metadata.topics] == [TOPIC_AUTHORIZATION_FAILED]
        pid = wire.call(22, 1, transactional_id=None, transaction_timeout=datetime.timedelta(0))
        assert pid.error_code == SASL_AUTHENTICATION_FAILED and pid.producer_id == -1
    refused = [
        request_frame(0, 8, 1, **produce_fields(topic, batch([b"sneaky"]))),
        request_frame(1, 11, 1, **fetch_fields(topic, 0, 0)),
        request_frame(2, 5, 1, **list_offsets_fields(topic, -1)),
        request_frame(19, 4, 1, **create_fields(topic)),
        request_frame(20, 3, 1, topic_names=(topic,), timeout=datetime.timedelta(seconds=5)),
    ]
    for frame in refused:
        with WireClient(broker.kafka_bootstrap) as wire:
            wire.send(frame)
            answer = wire.recv_frame()
        # Closed, or (Fetch v11: it has a top-level error code) answered with error 58 only.
        if answer is not None:
            (correlation_id, _, error_code) = struct.unpack_from(">iih", answer)
            assert (correlation_id, error_code) == (1, SASL_AUTHENTICATION_FAILED)
    assert topic not in http_topics(broker)
    assert "before SASL authentication (the broker has a token): refused" in broker.log()


def test_wrong_password_is_refused_and_the_connection_closed(broker: BrokerProcess) -> None:
    with WireClient(broker.kafka_bootstrap) as wire:
        answer = authenticate(wire, "not-the-token")
        assert answer.error_code == SASL_AUTHENTICATION_FAILED  # type: ignore[attr-defined]
        assert wire.closed_by_peer()


def test_token_authenticates_with_handshake_v1_and_v0(broker: BrokerProcess) -> None:
    topic = f"sasl-ok-{uuid.uuid4().hex[:6]}"
    with WireClient(broker.kafka_bootstrap) as wire:
        assert authenticate(wire, TOKEN).error_code == 0  # type: ignore[attr-defined]
        produced = wire.call(0, 8, 3, **produce_fields(topic, batch([b"ok"])))
        assert produced.responses[0].partition_responses[0].error_code == 0
    with WireClient(broker.kafka_bootstrap) as wire:
        assert wire.call(17, 0, mechanism="PLAIN").error_code == 0
        wire.send(raw_frame(plain(TOKEN)))  # v0: the bare SASL message, no Kafka header
        assert wire.recv_frame() == b""
        metadata = wire.call(3, 8, 4, **metadata_fields(topic))
        assert metadata.topics[0].error_code == 0
    with WireClient(broker.kafka_bootstrap) as wire:
        assert wire.call(17, 0, mechanism="PLAIN").error_code == 0
        wire.send(raw_frame(plain("wrong")))
        assert wire.closed_by_peer()


# -- real clients ---------------------------------------------------------------------------


def test_kafka_python_with_and_without_sasl(broker: BrokerProcess) -> None:
    topic = f"sasl-kp-{uuid.uuid4().hex[:6]}"
    sasl = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "kp",
    }
    producer = KafkaProducer(
        bootstrap_servers=broker.kafka_bootstrap, sasl_plain_password=TOKEN, **sasl
    )
    try:
        assert producer.send(topic, b"hello").get(TIMEOUT_S).offset == 0
    finally:
        producer.close(timeout=10)
    # (A wrong password: kafka-python 3 retries the bootstrap and reports only a timeout,
    # after 30 s; the raw-socket and the other clients' tests cover that refusal.)
    plain_producer = KafkaProducer(
        bootstrap_servers=broker.kafka_bootstrap, max_block_ms=10_000, enable_idempotence=False
    )
    try:
        with pytest.raises(kafka.errors.TopicAuthorizationFailedError):
            plain_producer.send(topic, b"x").get(TIMEOUT_S)
    finally:
        plain_producer.close(timeout=10)


def test_aiokafka_with_and_without_sasl(broker: BrokerProcess) -> None:
    topic = f"sasl-aio-{uuid.uuid4().hex[:6]}"

    async def main() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.kafka_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username="aio",
            sasl_plain_password=TOKEN,
        )
        await producer.start()
        try:
            assert (await producer.send_and_wait(topic, b"hello")).offset == 0
        finally:
            await producer.stop()
        wrong = AIOKafkaProducer(
            bootstrap_servers=broker.kafka_bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username="aio",
            sasl_plain_password="wrong",
        )
        with pytest.raises(aiokafka.errors.KafkaError):
            await wrong.start()
        await wrong.stop()
        unauthenticated = AIOKafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
        await unauthenticated.start()
        try:
            with pytest.raises(aiokafka.errors.TopicAuthorizationFailedError):
                await asyncio.wait_for(unauthenticated.send_and_wait(topic, b"x"), TIMEOUT_S)
        finally:
            await unauthenticated.stop()

    asyncio.run(main())


def test_confluent_kafka_with_and_without_sasl(broker: BrokerProcess) -> None:
    topic = f"sasl-cf-{uuid.uuid4().hex[:6]}"

    def produce(config: dict[str, object]) -> tuple[list[object], list[object]]:
        errors: list[object] = []
        reports: list[object] = []
        producer = Producer(
            {
                "bootstrap.servers": broker.kafka_bootstrap,
                "message.timeout.ms": 5_000,
                "error_cb": errors.append,
                **config,
            }
        )
        producer.produce(topic, b"x", on_delivery=lambda error, _: reports.append(error))
        producer.flush(TIMEOUT_S)
        return errors, reports

    sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN", "sasl.username": "u"}
    errors, reports = produce({**sasl, "sasl.password": TOKEN})
    assert reports == [None], (errors, reports)
    errors, reports = produce({**sasl, "sasl.password": "wrong"})
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors  # type: ignore[attr-defined]
    assert reports and reports[0] is not None
    errors, reports = produce({})
    assert reports and reports[0] is not None
    assert reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports  # type: ignore[attr-defined]


def test_kcat_with_sasl(broker: BrokerProcess) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("NOT RUN: kcat is not installed (apt-get install -y kcat; .ci/run does)")
    topic = f"sasl-kcat-{uuid.uuid4().hex[:6]}"
    sasl = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN"]
    sasl += ["-X", "sasl.username=kcat"]
    ok = subprocess.run(
        [
            kcat,
            "-b",
            broker.kafka_bootstrap,
            *sasl,
            "-X",
            f"sasl.password={TOKEN}",
            "-P",
            "-t",
            topic,
        ],
        input=b"hello\n",
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr.decode()
    assert topic in http_topics(broker)
    refused = subprocess.run(
        [
            kcat,
            "-b",
            broker.kafka_bootstrap,
            "-P",
            "-t",
            f"{topic}-x",
            "-X",
            "message.timeout.ms=5000",
        ],
        input=b"hello\n",
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert refused.returncode != 0 or b"uthoriz" in refused.stderr, refused.stderr.decode()
    assert f"{topic}-x" not in http_topics(broker)
