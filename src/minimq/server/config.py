"""Settings of one broker process (filled from flags and ``MINIMQ_*`` variables)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from minimq.core import BrokerSettings
from minimq.core.header_limits import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADERS, HeaderLimits
from minimq.core.idempotency import (
    DEFAULT_KEYS_PER_TOPIC,
    DEFAULT_MAX_KEYS,
    DEFAULT_WINDOW_MS,
    WindowBounds,
)
from minimq.core.timestamps import DEFAULT_AFTER_MAX_MS, DEFAULT_BEFORE_MAX_MS, TimestampBounds
from minimq.kafka.settings import DEFAULT_MAX_REQUEST_BYTES, KafkaSettings
from minimq.storage.api import FsyncPolicy
from minimq.storage.limits import (
    DEFAULT_MAX_OPEN_SEGMENT_FILES,
    DEFAULT_MAX_PARTITIONS,
    DEFAULT_MAX_TOPICS,
    StorageLimits,
)

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    data_dir: Path = Path("./minimq-data")
    host: str = "127.0.0.1"
    port: int = 5000
    fsync: FsyncPolicy = field(default_factory=FsyncPolicy)
    token: str | None = None
    log_level: str = "INFO"
    default_partitions: int = 1
    max_body_bytes: int = 8 * MIB
    max_record_bytes: int = MIB
    max_record_headers: int = DEFAULT_MAX_HEADERS
    max_record_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    request_timeout_s: float = 30.0
    session_timeout_ms: int = 10_000
    max_connections: int = 1024
    # Slow and hostile clients (minimq.server.connection_limit, response_budget).
    max_connections_per_address: int = 256
    reserved_connections: int = 64
    header_timeout_s: float = 10.0
    write_timeout_s: float = 30.0
    response_buffer_bytes: int = 128 * MIB
    auto_create_topics: bool = True
    retention_check_interval_s: float = 60.0
    shutdown_timeout_s: float = 10.0
    # Defaults for topics that set no bound of their own (minimq.core.timestamps).
    message_timestamp_before_max_ms: int = DEFAULT_BEFORE_MAX_MS
    message_timestamp_after_max_ms: int = DEFAULT_AFTER_MAX_MS
    # Resource bounds of the disk engine (minimq.storage.limits).
    max_open_segment_files: int = DEFAULT_MAX_OPEN_SEGMENT_FILES
    max_topics: int = DEFAULT_MAX_TOPICS
    max_partitions: int = DEFAULT_MAX_PARTITIONS
    # The idempotent-produce window (minimq.core.idempotency).
    idempotency_window_ms: int = DEFAULT_WINDOW_MS
    idempotency_keys_per_topic: int = DEFAULT_KEYS_PER_TOPIC
    idempotency_max_keys: int = DEFAULT_MAX_KEYS
    # The Kafka listener (minimq.kafka); port 0 turns it off.
    kafka_port: int = 9092
    kafka_advertised_host: str | None = None
    kafka_advertised_port: int | None = None
    kafka_auto_create_topics: bool = True
    kafka_max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    @property
    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(
            host=self.host,
            port=self.kafka_port,
            advertised_host=self.kafka_advertised_host,
            advertised_port=self.kafka_advertised_port,
            auto_create_topics=self.kafka_auto_create_topics,
            max_request_bytes=self.kafka_max_request_bytes,
            token=self.token,
            max_connections=self.max_connections,
            max_connections_per_address=self.max_connections_per_address,
        )

    @property
    def storage_limits(self) -> StorageLimits:
        return StorageLimits(self.max_open_segment_files, self.max_topics, self.max_partitions)

    @property
    def broker_settings(self) -> BrokerSettings:
        return BrokerSettings(
            default_partitions=self.default_partitions,
            auto_create_topics=self.auto_create_topics,
            max_record_bytes=self.max_record_bytes,
            header_limits=HeaderLimits(self.max_record_headers, self.max_record_header_bytes),
            session_timeout_ms=self.session_timeout_ms,
            timestamp_bounds=TimestampBounds(
                self.message_timestamp_before_max_ms, self.message_timestamp_after_max_ms
            ),
            idempotency=WindowBounds(
                self.idempotency_window_ms,
                self.idempotency_keys_per_topic,
                self.idempotency_max_keys,
            ),
        )

    @property
    def exposed_without_token(self) -> bool:
        """True when the broker listens beyond loopback with no token configured."""
        if self.token:
            return False
        if self.host in ("localhost", ""):
            return self.host == ""
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True
