"""``minimq broker``: flags and ``MINIMQ_*`` variables → BrokerConfig → serve."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

import uvloop

from minimq.cli.options import add_token_option
from minimq.core.header_limits import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADERS
from minimq.core.idempotency import DEFAULT_KEYS_PER_TOPIC, DEFAULT_MAX_KEYS, DEFAULT_WINDOW_MS
from minimq.core.timestamps import DEFAULT_AFTER_MAX_MS, DEFAULT_BEFORE_MAX_MS
from minimq.core.topic_config import UNBOUNDED_MS, FsyncPolicy
from minimq.environment import env, one_of, port, port_or_off, switch
from minimq.errors import InvalidConfig
from minimq.kafka.settings import DEFAULT_MAX_REQUEST_BYTES
from minimq.server.config import MIB, BrokerConfig, advertised_url, nats_servers
from minimq.server.process import serve
from minimq.storage.limits import (
    DEFAULT_MAX_OPEN_SEGMENT_FILES,
    DEFAULT_MAX_PARTITIONS,
    DEFAULT_MAX_TOPICS,
)

# What NATS stream, subject and KV bucket names can all carry as a prefix.
NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "broker", help="run the broker", description="Run the MiniMQ broker."
    )
    add = parser.add_argument
    add(
        "--data-dir",
        type=Path,
        default=Path(env("MINIMQ_DATA_DIR", "./minimq-data") or ""),
        help="data directory (env MINIMQ_DATA_DIR; default %(default)s)",
    )
    add(
        "--backend",
        default=env("MINIMQ_BACKEND", "") or "",
        help="where the log lives: empty for the data directory, or nats://host:port[,host:port"
        "...] for a NATS JetStream cluster shared by stateless brokers (env MINIMQ_BACKEND;"
        " default: the data directory)",
    )
    add(
        "--replicas",
        type=int,
        default=int(env("MINIMQ_REPLICAS") or 3),
        help="JetStream replicas of each partition's stream and of the KV buckets, with"
        " --backend nats://... (env MINIMQ_REPLICAS; default %(default)s)",
    )
    add(
        "--nats-namespace",
        default=env("MINIMQ_NATS_NAMESPACE", "minimq") or "minimq",
        help="prefix of every JetStream stream, subject and KV bucket of this deployment, with"
        " --backend nats://... (env MINIMQ_NATS_NAMESPACE; default %(default)s)",
    )
    add(
        "--host",
        default=env("MINIMQ_HOST", "127.0.0.1"),
        help="address to bind (env MINIMQ_HOST; default %(default)s)",
    )
    add(
        "--port",
        type=port,
        default=int(env("MINIMQ_PORT", "5000") or 5000),
        help="port (env MINIMQ_PORT; default %(default)s)",
    )
    add(
        "--fsync",
        default=env("MINIMQ_FSYNC", "always"),
        help="always | interval:MS | never (env MINIMQ_FSYNC; default %(default)s)",
    )
    add_token_option(parser)
    add(
        "--log-level",
        type=one_of("DEBUG", "INFO", "WARNING", "ERROR"),
        default=env("MINIMQ_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (env MINIMQ_LOG_LEVEL; default %(default)s)",
    )
    add(
        "--default-partitions",
        type=int,
        default=int(env("MINIMQ_DEFAULT_PARTITIONS", "1") or 1),
        help="partitions of auto-created topics (env MINIMQ_DEFAULT_PARTITIONS)",
    )
    add(
        "--max-body-bytes",
        type=int,
        default=int(env("MINIMQ_MAX_BODY_BYTES") or 8 * MIB),
        help="largest request body (env MINIMQ_MAX_BODY_BYTES; default 8 MiB)",
    )
    add(
        "--max-record-bytes",
        type=int,
        default=int(env("MINIMQ_MAX_RECORD_BYTES") or MIB),
        help="largest record: key + value + headers (env MINIMQ_MAX_RECORD_BYTES; default 1 MiB)",
    )
    add(
        "--max-record-headers",
        type=int,
        default=int(env("MINIMQ_MAX_RECORD_HEADERS") or DEFAULT_MAX_HEADERS),
        help="headers one record may carry; more is a 400 HEADERS_TOO_LARGE"
        " (env MINIMQ_MAX_RECORD_HEADERS; default %(default)s)",
    )
    add(
        "--max-record-header-bytes",
        type=int,
        default=int(env("MINIMQ_MAX_RECORD_HEADER_BYTES") or DEFAULT_MAX_HEADER_BYTES),
        help="bytes of header names and values one record may carry"
        " (env MINIMQ_MAX_RECORD_HEADER_BYTES; default 64 KiB)",
    )
    add(
        "--request-timeout",
        type=float,
        default=float(env("MINIMQ_REQUEST_TIMEOUT") or 30),
        help="seconds a client may take to send its body (env MINIMQ_REQUEST_TIMEOUT)",
    )
    add(
        "--advertised-url",
        default=env("MINIMQ_ADVERTISED_URL", "") or "",
        help="this broker's HTTP base URL as other brokers over the same --backend reach it"
        " (they forward group requests to a group's coordinator); a bare host means"
        " http://host:<--port> (env MINIMQ_ADVERTISED_URL; default http://<--host>:<--port>,"
        " with 127.0.0.1 for a wildcard --host)",
    )
    add(
        "--group-lease-ms",
        type=int,
        default=int(env("MINIMQ_GROUP_LEASE_MS") or 10_000),
        help="with --backend nats://...: how long a broker's ownership of a consumer group"
        " lasts unless renewed; after a broker dies, another takes its groups over within"
        " this time (env MINIMQ_GROUP_LEASE_MS; default %(default)s)",
    )
    add(
        "--session-timeout-ms",
        type=int,
        default=int(env("MINIMQ_SESSION_TIMEOUT_MS") or 10_000),
        help="group member session timeout (env MINIMQ_SESSION_TIMEOUT_MS; default 10000)",
    )
    add(
        "--max-connections",
        type=int,
        default=int(env("MINIMQ_MAX_CONNECTIONS") or 1024),
        help="open client connections, slow ones included (env MINIMQ_MAX_CONNECTIONS)",
    )
    add(
        "--max-connections-per-address",
        type=int,
        default=int(env("MINIMQ_MAX_CONNECTIONS_PER_ADDRESS") or 256),
        help="open connections from one client address, except those that presented the"
        " token (env MINIMQ_MAX_CONNECTIONS_PER_ADDRESS; default %(default)s)",
    )
    add(
        "--reserved-connections",
        type=int,
        default=int(env("MINIMQ_RESERVED_CONNECTIONS") or 64),
        help="connections (at most half of --max-connections) kept for clients that present"
        " the token and for /healthz (env MINIMQ_RESERVED_CONNECTIONS; default %(default)s)",
    )
    add(
        "--header-timeout",
        type=float,
        default=float(env("MINIMQ_HEADER_TIMEOUT") or 10),
        help="seconds a new connection may take to send its first request head"
        " (env MINIMQ_HEADER_TIMEOUT; default %(default)s)",
    )
    add(
        "--write-timeout",
        type=float,
        default=float(env("MINIMQ_WRITE_TIMEOUT") or 30),
        help="seconds a client may read nothing of a response before it is dropped"
        " (env MINIMQ_WRITE_TIMEOUT; default %(default)s)",
    )
    add(
        "--response-buffer-bytes",
        type=int,
        default=int(env("MINIMQ_RESPONSE_BUFFER_BYTES") or 128 * MIB),
        help="bytes of large responses (fetches, streams) waiting for slow readers, broker-wide"
        " (env MINIMQ_RESPONSE_BUFFER_BYTES; default 128 MiB)",
    )
    add(
        "--no-auto-create-topics",
        action="store_true",
        default=env("MINIMQ_NO_AUTO_CREATE_TOPICS", "") not in ("", "0", "false"),
        help="produce to an unknown topic is a 404 (env MINIMQ_NO_AUTO_CREATE_TOPICS)",
    )
    add(
        "--max-topics",
        type=int,
        default=int(env("MINIMQ_MAX_TOPICS") or DEFAULT_MAX_TOPICS),
        help="topics the broker holds at most; creating one more, also by a first produce,"
        " is a 409 TOPIC_LIMIT_REACHED (env MINIMQ_MAX_TOPICS; default %(default)s)",
    )
    add(
        "--max-partitions",
        type=int,
        default=int(env("MINIMQ_MAX_PARTITIONS") or DEFAULT_MAX_PARTITIONS),
        help="partitions of all topics together at most; beyond it a creation is a 409"
        " PARTITION_LIMIT_REACHED (env MINIMQ_MAX_PARTITIONS; default %(default)s)",
    )
    add(
        "--max-open-segment-files",
        type=int,
        default=int(env("MINIMQ_MAX_OPEN_SEGMENT_FILES") or DEFAULT_MAX_OPEN_SEGMENT_FILES),
        help="segment files kept open; the least recently used are closed and reopened"
        " when read (env MINIMQ_MAX_OPEN_SEGMENT_FILES; default %(default)s)",
    )
    add(
        "--idempotency-window-ms",
        type=int,
        default=int(env("MINIMQ_IDEMPOTENCY_WINDOW_MS") or DEFAULT_WINDOW_MS),
        help="how long a produce's Idempotency-Key is remembered, so that a retry stores"
        " nothing twice (env MINIMQ_IDEMPOTENCY_WINDOW_MS; default %(default)s)",
    )
    add(
        "--idempotency-keys-per-topic",
        type=int,
        default=int(env("MINIMQ_IDEMPOTENCY_KEYS_PER_TOPIC") or DEFAULT_KEYS_PER_TOPIC),
        help="Idempotency-Keys remembered per topic, the oldest forgotten first"
        " (env MINIMQ_IDEMPOTENCY_KEYS_PER_TOPIC; default %(default)s)",
    )
    add(
        "--idempotency-max-keys",
        type=int,
        default=int(env("MINIMQ_IDEMPOTENCY_MAX_KEYS") or DEFAULT_MAX_KEYS),
        help="Idempotency-Keys remembered by the broker in all, the oldest forgotten first"
        " (env MINIMQ_IDEMPOTENCY_MAX_KEYS; default %(default)s)",
    )
    add(
        "--retention-check-interval",
        type=float,
        default=float(env("MINIMQ_RETENTION_CHECK_INTERVAL") or 60),
        help="seconds between retention checks (env MINIMQ_RETENTION_CHECK_INTERVAL)",
    )
    add(
        "--message-timestamp-before-max-ms",
        type=int,
        default=int(env("MINIMQ_MESSAGE_TIMESTAMP_BEFORE_MAX_MS") or DEFAULT_BEFORE_MAX_MS),
        help="refuse records stamped more than this before broker time, for topics that set"
        " no bound (env MINIMQ_MESSAGE_TIMESTAMP_BEFORE_MAX_MS; default %(default)s;"
        f" {UNBOUNDED_MS} means no bound)",
    )
    add(
        "--message-timestamp-after-max-ms",
        type=int,
        default=int(env("MINIMQ_MESSAGE_TIMESTAMP_AFTER_MAX_MS") or DEFAULT_AFTER_MAX_MS),
        help="refuse records stamped more than this after broker time, for topics that set"
        " no bound (env MINIMQ_MESSAGE_TIMESTAMP_AFTER_MAX_MS; default %(default)s)",
    )
    add(
        "--kafka-port",
        type=port_or_off,
        default=int(env("MINIMQ_KAFKA_PORT", "9092") or 9092),
        help="Kafka protocol port on --host; 0 turns the Kafka listener off"
        " (env MINIMQ_KAFKA_PORT; default %(default)s)",
    )
    add(
        "--kafka-advertised-host",
        default=env("MINIMQ_KAFKA_ADVERTISED_HOST"),
        help="host Kafka clients are told to connect to (Metadata); needed behind Docker or"
        " NAT (env MINIMQ_KAFKA_ADVERTISED_HOST; default: --host, or the host name when"
        " --host is 0.0.0.0)",
    )
    add(
        "--kafka-advertised-port",
        type=port,
        default=int(env("MINIMQ_KAFKA_ADVERTISED_PORT") or 0) or None,
        help="port Kafka clients are told to connect to (env MINIMQ_KAFKA_ADVERTISED_PORT;"
        " default: the Kafka port)",
    )
    add(
        "--kafka-auto-create-topics",
        type=switch,
        default=switch(env("MINIMQ_KAFKA_AUTO_CREATE_TOPICS", "true") or "true"),
        help="create unknown topics on Kafka Metadata and Produce requests: true or false"
        " (env MINIMQ_KAFKA_AUTO_CREATE_TOPICS; default true)",
    )
    add(
        "--kafka-max-request-bytes",
        type=int,
        default=int(env("MINIMQ_KAFKA_MAX_REQUEST_BYTES") or DEFAULT_MAX_REQUEST_BYTES),
        help="largest Kafka request frame; a larger one closes the connection, as Kafka's"
        " socket.request.max.bytes (env MINIMQ_KAFKA_MAX_REQUEST_BYTES; default 100 MiB)",
    )
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> BrokerConfig:
    positive = {
        "--port": args.port,
        "--replicas": args.replicas,
        "--default-partitions": args.default_partitions,
        "--max-body-bytes": args.max_body_bytes,
        "--max-record-bytes": args.max_record_bytes,
        "--max-record-headers": args.max_record_headers,
        "--max-record-header-bytes": args.max_record_header_bytes,
        "--session-timeout-ms": args.session_timeout_ms,
        "--group-lease-ms": args.group_lease_ms,
        "--max-topics": args.max_topics,
        "--max-partitions": args.max_partitions,
        "--max-open-segment-files": args.max_open_segment_files,
        "--max-connections": args.max_connections,
        "--max-connections-per-address": args.max_connections_per_address,
        "--response-buffer-bytes": args.response_buffer_bytes,
        "--idempotency-window-ms": args.idempotency_window_ms,
        "--idempotency-keys-per-topic": args.idempotency_keys_per_topic,
        "--idempotency-max-keys": args.idempotency_max_keys,
        "--kafka-max-request-bytes": args.kafka_max_request_bytes,
    }
    for flag, value in positive.items():
        if value <= 0:
            raise InvalidConfig(f"{flag} must be positive, not {value}")
    if args.request_timeout <= 0 or args.retention_check_interval <= 0:
        raise InvalidConfig("--request-timeout and --retention-check-interval must be positive")
    if args.header_timeout <= 0 or args.write_timeout <= 0:
        raise InvalidConfig("--header-timeout and --write-timeout must be positive")
    if args.reserved_connections < 0:
        raise InvalidConfig(
            f"--reserved-connections must be 0 or more, not {args.reserved_connections}"
        )
    bounds = {
        "--message-timestamp-before-max-ms": args.message_timestamp_before_max_ms,
        "--message-timestamp-after-max-ms": args.message_timestamp_after_max_ms,
    }
    for flag, value in bounds.items():
        if not 0 <= value <= UNBOUNDED_MS:
            raise InvalidConfig(f"{flag} must be 0-{UNBOUNDED_MS}, not {value}")
    nats_servers(args.backend)  # InvalidConfig for a value that names no backend
    advertised_url(args.advertised_url, args.port)  # InvalidConfig for one that is no URL
    if not NAMESPACE.fullmatch(args.nats_namespace):
        raise InvalidConfig(
            "--nats-namespace must be 1-64 characters of A-Z a-z 0-9 _ -,"
            f" not {args.nats_namespace!r}"
        )
    return BrokerConfig(
        data_dir=args.data_dir,
        backend=args.backend.strip(),
        replicas=args.replicas,
        nats_namespace=args.nats_namespace,
        host=args.host,
        port=args.port,
        fsync=FsyncPolicy.parse(args.fsync),
        token=args.token or None,
        log_level=args.log_level.upper(),
        default_partitions=args.default_partitions,
        max_body_bytes=args.max_body_bytes,
        max_record_bytes=args.max_record_bytes,
        max_record_headers=args.max_record_headers,
        max_record_header_bytes=args.max_record_header_bytes,
        request_timeout_s=args.request_timeout,
        session_timeout_ms=args.session_timeout_ms,
        advertised_url=args.advertised_url.strip(),
        group_lease_ms=args.group_lease_ms,
        max_connections=args.max_connections,
        max_connections_per_address=args.max_connections_per_address,
        reserved_connections=args.reserved_connections,
        header_timeout_s=args.header_timeout,
        write_timeout_s=args.write_timeout,
        response_buffer_bytes=args.response_buffer_bytes,
        auto_create_topics=not args.no_auto_create_topics,
        max_topics=args.max_topics,
        max_partitions=args.max_partitions,
        max_open_segment_files=args.max_open_segment_files,
        retention_check_interval_s=args.retention_check_interval,
        message_timestamp_before_max_ms=args.message_timestamp_before_max_ms,
        message_timestamp_after_max_ms=args.message_timestamp_after_max_ms,
        idempotency_window_ms=args.idempotency_window_ms,
        idempotency_keys_per_topic=args.idempotency_keys_per_topic,
        idempotency_max_keys=args.idempotency_max_keys,
        kafka_port=args.kafka_port,
        kafka_advertised_host=args.kafka_advertised_host or None,
        kafka_advertised_port=args.kafka_advertised_port,
        kafka_auto_create_topics=args.kafka_auto_create_topics,
        kafka_max_request_bytes=args.kafka_max_request_bytes,
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_from_args(args)
    except InvalidConfig as exc:
        logging.getLogger("minimq.broker").error("invalid configuration: %s", exc.message)
        return 2
    return uvloop.run(serve(config))
