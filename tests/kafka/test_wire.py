"""The Kafka listener on the wire: versions, framing, pipelining, limits, per-API rules.

One real broker process for the module, spoken to with hand-made frames
(:mod:`tests.kafka.wire`); every test uses topics of its own.
"""

from __future__ import annotations

import datetime
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder
from kio.schema.create_topics.v4.request import CreatableTopic, CreatableTopicConfig
from kio.schema.describe_configs.v3.request import DescribeConfigsResource
from kio.schema.fetch.v11.request import FetchPartition, FetchTopic
from kio.schema.list_offsets import v1 as list_offsets_v1
from kio.schema.list_offsets.v5.request import ListOffsetsPartition, ListOffsetsTopic
from kio.schema.metadata.v8.request import MetadataRequestTopic
from kio.schema.produce.v8.request import PartitionProduceData, TopicProduceData
from tests.kafka.wire import WireClient, head_only_frame, raw_frame, request_frame
from tests.support.processes import BrokerProcess

# Runs on the disk engine and on a JetStream cluster (tests/conftest.py, "Backends").
pytestmark = pytest.mark.backends("disk", "jetstream")

MAX_REQUEST_BYTES = 1024 * 1024
NONE, UNKNOWN_TOPIC, INVALID_TOPIC = 0, 3, 17
UNSUPPORTED_VERSION, INVALID_CONFIG, INVALID_REPLICATION_FACTOR = 35, 40, 38
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
ADVERTISED = {
    0: (0, 8),
    1: (4, 11),
    2: (1, 5),
    3: (0, 8),
    17: (0, 1),
    18: (0, 2),
    19: (2, 4),
    20: (1, 3),
    22: (0, 1),
    32: (1, 3),
    36: (0, 1),
}
GROUP_APIS = {8: (2, 7), 9: (1, 5), 10: (0, 2), 11: (0, 5), 12: (0, 3), 13: (0, 3), 14: (0, 3)}
GROUP_TOOLS = {15: (0, 4), 16: (0, 2)}


@pytest.fixture(scope="module")
def broker(backend_broker: Callable[..., BrokerProcess]) -> BrokerProcess:
    return backend_broker(
        ["--log-level", "DEBUG", "--kafka-max-request-bytes", str(MAX_REQUEST_BYTES)],
        kafka=True,
    )


def client(broker: BrokerProcess) -> WireClient:
    return WireClient(broker.kafka_bootstrap)


def batch(values: list[bytes], key: bytes | None = b"k") -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=key, value=value, headers=[])
    return bytes(builder.build())


def produce_fields(topic: str, records: bytes, acks: int = -1) -> dict[str, object]:
    return {
        "transactional_id": None,
        "acks": acks,
        "timeout": datetime.timedelta(seconds=30),
        "topic_data": (
            TopicProduceData(
                name=topic,
                partition_data=(PartitionProduceData(index=0, records=records),),
            ),
        ),
    }


def fetch_fields(topic: str, offset: int, max_wait_s: float, partition_max_bytes: int = 1 << 20):
    return {
        "max_wait": datetime.timedelta(seconds=max_wait_s),
        "min_bytes": 1,
        "max_bytes": 50 << 20,
        "topics": (
            FetchTopic(
                topic=topic,
                partitions=(
                    FetchPartition(
                        partition=0, fetch_offset=offset, partition_max_bytes=partition_max_bytes
                    ),
                ),
            ),
        ),
        "forgotten_topics_data": (),
    }


def metadata_fields(*topics: str, allow_auto_topic_creation: bool = True):
    return {
        "topics": tuple(MetadataRequestTopic(name=t) for t in topics),
        "allow_auto_topic_creation": allow_auto_topic_creation,
        "include_cluster_authorized_operations": False,
        "include_topic_authorized_operations": False,
    }


def wait_for_log(broker: BrokerProcess, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = broker.log()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the broker log:\n{broker.log()[-3000:]}")


def assert_still_serving(broker: BrokerProcess) -> None:
    assert httpx.get(f"{broker.url}/healthz", timeout=10).status_code == 200
    with client(broker) as fresh:
        answer = fresh.call(18, 2)
        assert answer.error_code == NONE


# -- ApiVersions -------------------------------------------------------------------


def test_api_versions_advertise_exactly_the_agreed_ranges(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        answer = wire.call(18, 2)
    ranges = {a.api_key: (a.min_version, a.max_version) for a in answer.api_keys}
    assert answer.error_code == NONE
    mine = {key: ranges.get(key) for key in ADVERTISED}
    assert mine == ADVERTISED
    # Group keys are advertised together or not at all, each at the agreed range.
    extra = {key: value for key, value in ranges.items() if key not in ADVERTISED}
    assert extra in ({}, GROUP_APIS, GROUP_APIS | GROUP_TOOLS), extra
    assert not {60, 68, 75} & set(ranges), "flexible-only APIs must not be advertised"


@pytest.mark.parametrize("version", [3, 4, 9])
def test_api_versions_above_the_max_get_the_kip_511_v0_answer(
    broker: BrokerProcess, version: int
) -> None:
    with client(broker) as wire:
        wire.send(head_only_frame(18, version, 77))
        correlation_id, answer = wire.response(18, 0)  # type: ignore[misc]
    assert correlation_id == 77
    assert answer.error_code == UNSUPPORTED_VERSION
    assert [(a.api_key, a.min_version, a.max_version) for a in answer.api_keys] == [(18, 0, 2)]


# -- pipelining and acks=0 ---------------------------------------------------------


def test_pipelined_requests_are_answered_in_request_order(broker: BrokerProcess) -> None:
    frames = []
    expected = []
    for correlation_id in range(1, 31):
        if correlation_id % 3 == 0:
            frames.append(request_frame(3, 8, correlation_id, **metadata_fields("pipe-t")))
            expected.append((correlation_id, 3, 8))
        elif correlation_id % 3 == 1:
            frames.append(
                request_frame(1, 11, correlation_id, **fetch_fields("pipe-t", 0, max_wait_s=0.2))
            )
            expected.append((correlation_id, 1, 11))
        else:
            frames.append(request_frame(18, 1, correlation_id))
            expected.append((correlation_id, 18, 1))
    with client(broker) as wire:
        wire.send(b"".join(frames))
        seen = []
        for correlation_id, key, version in expected:
            answer = wire.response(key, version)
            assert answer is not None, f"closed before the answer to {correlation_id}"
            seen.append(answer[0])
    assert seen == [correlation_id for correlation_id, _, _ in expected]


def test_acks_0_gets_no_response_and_is_stored(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        wire.send(request_frame(0, 8, 5, **produce_fields("acks0", batch([b"a", b"b"]), acks=0)))
        wire.send(request_frame(18, 2, 6))
        correlation_id, _ = wire.response(18, 2)  # type: ignore[misc]
        assert correlation_id == 6, "the acks=0 produce must not be answered"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            offsets = wire.call(2, 5, 7, **list_offsets_fields("acks0", -1))
            if offsets.topics[0].partitions[0].offset == 2:
                break
            time.sleep(0.05)
        assert offsets.topics[0].partitions[0].offset == 2


def test_produce_v0_to_v2_are_advertised_but_refused(broker: BrokerProcess) -> None:
    # kio has no Produce v0-2 schema (nor has Kafka 4): the v2 request is built by hand.
    name = b"old-produce"
    records = batch([b"x"])
    body = (
        struct.pack(">hi", 1, 5000)
        + struct.pack(">ih", 1, len(name))
        + name
        + struct.pack(">iii", 1, 0, len(records))
        + records
    )
    header = struct.pack(">hhih", 0, 2, 31, 4) + b"test"
    with client(broker) as wire:
        wire.send(raw_frame(header + body))
        frame = wire.recv_frame()
    assert frame is not None
    correlation_id, topics, length = struct.unpack_from(">iih", frame)
    assert (correlation_id, topics, frame[10 : 10 + length]) == (31, 1, name)
    partitions, index, error_code, base_offset, _, _ = struct.unpack_from(
        ">iihqqi", frame, 10 + length
    )
    assert (partitions, index, error_code, base_offset) == (1, 0, UNSUPPORTED_VERSION, -1)
    assert len(frame) == 10 + length + 30
    assert "old-produce" not in httpx.get(f"{broker.url}/v1/topics", timeout=10).text


# -- unsupported keys and versions ---------------------------------------------------


def test_unknown_api_key_closes_with_a_log_line(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        port = wire.sock.getsockname()[1]
        wire.send(head_only_frame(42, 0, 9))  # DeleteGroups: not served
        assert wire.closed_by_peer()
    wait_for_log(broker, f"closing connection from 127.0.0.1:{port}: API key 42")
    assert_still_serving(broker)


def test_unsupported_version_with_an_error_field_gets_unsupported_version(
    broker: BrokerProcess,
) -> None:
    with client(broker) as wire:
        wire.send(head_only_frame(22, 5, 11))  # InitProducerId v5: beyond 0-1
        correlation_id, answer = wire.response(22, 0)  # type: ignore[misc]
    assert (correlation_id, answer.error_code) == (11, UNSUPPORTED_VERSION)


def test_unsupported_version_without_an_error_field_closes_with_a_log_line(
    broker: BrokerProcess,
) -> None:
    with client(broker) as wire:
        port = wire.sock.getsockname()[1]
        wire.send(head_only_frame(3, 12, 12))  # Metadata v12 (flexible): not served
        assert wire.closed_by_peer()
    wait_for_log(broker, f"closing connection from 127.0.0.1:{port}: metadata v12 is not supported")


# -- malformed and oversized frames ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("oversized", struct.pack(">i", MAX_REQUEST_BYTES + 1), "frame of 1048577 bytes"),
        ("negative", struct.pack(">i", -5), "frame of -5 bytes"),
        ("tiny", raw_frame(b"\x00\x03"), "too short for a request header"),
        (
            "garbage body",
            raw_frame(struct.pack(">hhih", 3, 8, 1, 4) + b"abcd" + b"\xff" * 7),
            "malformed metadata v8 request",
        ),
        (
            "huge array count",
            raw_frame(struct.pack(">hhih", 3, 8, 1, -1) + struct.pack(">i", 2**31 - 1)),
            "malformed metadata v8 request",
        ),
        ("truncated", struct.pack(">i", 100) + b"\x00\x03\x00\x08", "truncated frame (4 of 100"),
    ],
)
def test_bad_frames_close_the_connection_with_a_warning(
    broker: BrokerProcess, name: str, data: bytes, reason: str
) -> None:
    with client(broker) as wire:
        port = wire.sock.getsockname()[1]
        wire.send(data)
        if name == "truncated":
            wire.sock.shutdown(socket.SHUT_WR)
        assert wire.closed_by_peer()
    log = wait_for_log(broker, f"closing connection from 127.0.0.1:{port}: ")
    line = next(line for line in log.splitlines() if f"127.0.0.1:{port}:" in line)
    assert "WARNING" in line and reason in line, line
    assert_still_serving(broker)


# -- Metadata ----------------------------------------------------------------------------


def test_metadata_names_node_0_as_leader_and_controller(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        answer = wire.call(3, 8, **metadata_fields("meta-auto"))
    assert [(b.node_id, b.host, b.port) for b in answer.brokers] == [
        (0, "127.0.0.1", broker.kafka_port)
    ]
    assert answer.controller_id == 0
    (topic,) = answer.topics
    assert (topic.name, topic.error_code) == ("meta-auto", NONE)
    (partition,) = topic.partitions
    assert (partition.leader_id, partition.leader_epoch, partition.replica_nodes) == (0, 0, (0,))


def test_metadata_invalid_name_and_no_auto_create(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        answer = wire.call(
            3, 8, **metadata_fields("bad name!", "meta-none", allow_auto_topic_creation=False)
        )
    codes = {t.name: t.error_code for t in answer.topics}
    assert codes == {"bad name!": INVALID_TOPIC, "meta-none": UNKNOWN_TOPIC}
    assert "meta-none" not in httpx.get(f"{broker.url}/v1/topics", timeout=10).text


def test_kafka_auto_create_can_be_turned_off(tmp_path: Path) -> None:
    with (
        BrokerProcess(
            tmp_path / "data", ["--kafka-auto-create-topics", "false"], kafka=True
        ) as off,
        client(off) as wire,
    ):
        answer = wire.call(3, 8, **metadata_fields("never-made"))
        produced = wire.call(0, 8, **produce_fields("never-made", batch([b"x"])))
    assert answer.topics[0].error_code == UNKNOWN_TOPIC
    assert produced.responses[0].partition_responses[0].error_code == UNKNOWN_TOPIC


# -- Fetch ---------------------------------------------------------------------------------


def test_fetch_long_polls_until_records_arrive(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        wire.call(3, 8, **metadata_fields("longpoll"))
        # A fetch that would wait 60 s; the socket gives up after 30 s.
        wire.send(request_frame(1, 11, 21, **fetch_fields("longpoll", 0, max_wait_s=60)))

        def produce_soon() -> None:
            time.sleep(0.5)
            with client(broker) as other:
                other.call(0, 8, **produce_fields("longpoll", batch([b"late"])))

        thread = threading.Thread(target=produce_soon)
        thread.start()
        correlation_id, answer = wire.response(1, 11)  # type: ignore[misc]
        thread.join()
    assert correlation_id == 21
    partition = answer.responses[0].partitions[0]
    assert (partition.error_code, partition.high_watermark) == (NONE, 1)
    assert b"late" in partition.records
    assert answer.session_id == 0 and partition.preferred_read_replica == -1


# Disk only: it checks the stored frame comes back verbatim; JetStream stores records, not
# frames, and encodes a batch from the requested offset on (allowed by the storage seam).
@pytest.mark.backends("disk")
def test_fetch_inside_a_batch_returns_the_whole_batch_even_past_max_bytes(
    broker: BrokerProcess,
) -> None:
    stored = batch([b"r%d" % i * 50 for i in range(5)])
    with client(broker) as wire:
        produced = wire.call(0, 8, **produce_fields("midbatch", stored))
        assert produced.responses[0].partition_responses[0].base_offset == 0
        answer = wire.call(1, 11, **fetch_fields("midbatch", 3, 0, partition_max_bytes=10))
    records = answer.responses[0].partitions[0].records
    assert len(records) == len(stored)
    assert struct.unpack_from(">q", records)[0] == 0  # the batch's own base offset
    assert records[16:] == stored[16:]  # verbatim from magic on (the CRC-covered part)


def test_fetch_unknown_topic_and_out_of_range(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        wire.call(0, 8, **produce_fields("range", batch([b"x"])))
        missing = wire.call(1, 11, **fetch_fields("no-such-topic", 0, 0))
        beyond = wire.call(1, 11, **fetch_fields("range", 5, 0))
    assert missing.responses[0].partitions[0].error_code == UNKNOWN_TOPIC
    assert beyond.responses[0].partitions[0].error_code == 1  # OFFSET_OUT_OF_RANGE
    assert beyond.responses[0].partitions[0].high_watermark == 1


# -- ListOffsets, admin APIs, InitProducerId ---------------------------------------------


def list_offsets_fields(topic: str, timestamp: int):
    return {
        "replica_id": -1,
        "isolation_level": 0,
        "topics": (
            ListOffsetsTopic(
                name=topic,
                partitions=(ListOffsetsPartition(partition_index=0, timestamp=timestamp),),
            ),
        ),
    }


def test_list_offsets_earliest_latest_and_by_timestamp(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        wire.call(0, 8, **produce_fields("offsets", batch([b"a", b"b", b"c"])))
        before = int(time.time() * 1000) - 60_000
        latest = wire.call(2, 5, **list_offsets_fields("offsets", -1))
        earliest = wire.call(2, 5, **list_offsets_fields("offsets", -2))
        stamped = wire.call(2, 5, **list_offsets_fields("offsets", before))
        future = wire.call(2, 1, **_v1_list_offsets("offsets", int(time.time() * 1000) + 3600_000))
    assert latest.topics[0].partitions[0].offset == 3
    assert earliest.topics[0].partitions[0].offset == 0
    assert stamped.topics[0].partitions[0].offset == 0
    assert stamped.topics[0].partitions[0].timestamp >= before
    assert (future.topics[0].partitions[0].offset, future.topics[0].partitions[0].timestamp) == (
        -1,
        -1,
    )


def _v1_list_offsets(topic: str, timestamp: int):
    return {
        "replica_id": -1,
        "topics": (
            list_offsets_v1.request.ListOffsetsTopic(
                name=topic,
                partitions=(
                    list_offsets_v1.request.ListOffsetsPartition(
                        partition_index=0, timestamp=timestamp
                    ),
                ),
            ),
        ),
    }


def create_fields(name: str, partitions: int = 2, replication: int = 1, **configs: str):
    return {
        "topics": (
            CreatableTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=replication,
                assignments=(),
                configs=tuple(CreatableTopicConfig(name=k, value=v) for k, v in configs.items()),
            ),
        ),
        "timeout": datetime.timedelta(seconds=30),
        "validate_only": False,
    }


def test_create_topics_checks_configs_and_replication(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        compact = wire.call(19, 4, **create_fields("c-compact", **{"cleanup.policy": "compact"}))
        replicated = wire.call(19, 4, **create_fields("c-rf3", replication=3))
        unknown = wire.call(19, 4, **create_fields("c-unknown", **{"min.insync.replicas": "2"}))
        validate = wire.call(19, 4, **{**create_fields("c-validate"), "validate_only": True})
        made = wire.call(19, 4, **create_fields("c-made", 3, **{"retention.ms": "86400000"}))
        again = wire.call(19, 4, **create_fields("c-made"))
        described = wire.call(32, 3, **describe_fields("c-made"))
    assert compact.topics[0].error_code == INVALID_CONFIG
    assert replicated.topics[0].error_code == INVALID_REPLICATION_FACTOR
    assert unknown.topics[0].error_code == INVALID_CONFIG
    assert (validate.topics[0].error_code, made.topics[0].error_code) == (NONE, NONE)
    assert again.topics[0].error_code == 36  # TOPIC_ALREADY_EXISTS
    topics = httpx.get(f"{broker.url}/v1/topics", timeout=10).text
    assert "c-made" in topics and "c-validate" not in topics and "c-compact" not in topics
    configs = {c.name: c.value for c in described.results[0].configs}
    assert configs["cleanup.policy"] == "delete"
    assert configs["retention.ms"] == "86400000"
    assert configs["retention.bytes"] == "-1"
    assert {"segment.bytes", "message.timestamp.type"} <= set(configs)


def describe_fields(topic: str):
    return {
        "resources": (
            DescribeConfigsResource(resource_type=2, resource_name=topic, configuration_keys=None),
            DescribeConfigsResource(resource_type=4, resource_name="0", configuration_keys=None),
        ),
        "include_synonyms": False,
        "include_documentation": False,
    }


def test_init_producer_id_refuses_transactional_ids(broker: BrokerProcess) -> None:
    with client(broker) as wire:
        first = wire.call(22, 1, transactional_id=None, transaction_timeout=datetime.timedelta(0))
        second = wire.call(22, 1, transactional_id=None, transaction_timeout=datetime.timedelta(0))
        txn = wire.call(22, 1, transactional_id="tx", transaction_timeout=datetime.timedelta(0))
    assert first.error_code == second.error_code == NONE
    assert first.producer_id != second.producer_id
    assert first.producer_id >= 0 and first.producer_epoch == 0
    assert txn.error_code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
