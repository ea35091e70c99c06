"""Settings of one broker process (filled from flags and ``MINIMQ_*`` variables)."""

from __future__ import annotations

import ipaddress
import urllib.parse
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
from minimq.core.topic_config import FsyncPolicy
from minimq.errors import InvalidConfig
from minimq.kafka.settings import DEFAULT_MAX_REQUEST_BYTES, KafkaSettings

MIB = 1024 * 1024
NATS_SCHEME = "nats://"


def nats_servers(backend: str) -> list[str] | None:
    """The NATS URLs of a ``--backend`` value, None for the data directory (an empty value).

    ``nats://h1:4222,h2:4222`` names a JetStream cluster by any of its nodes;
    the scheme may be left off after the first.
    """
    backend = backend.strip()
    if not backend:
        return None
    if not backend.startswith(NATS_SCHEME):
        raise InvalidConfig(
            f"--backend must be empty (the data directory) or nats://host:port[,host:port...],"
            f" not {backend!r}"
        )
    servers = []
    for item in backend.split(","):
        address = item.strip().removeprefix(NATS_SCHEME)
        if not address or "://" in address or "/" in address:
            raise InvalidConfig(f"--backend: {item.strip()!r} is not a NATS server (host:port)")
        servers.append(NATS_SCHEME + address)
    return servers


def advertised_url(value: str, port: int) -> str:
    """A ``--advertised-url`` value checked and completed, or "" when none is given.

    ``http(s)://host[:port]`` (no path) as it is; a bare ``host`` or ``host:port``
    (a pod IP from the Kubernetes downward API, say) gets ``http://`` and, without a
    port, ``port`` (the broker's ``--port``).
    """
    value = value.strip().rstrip("/")
    if not value:
        return ""
    bare = "://" not in value
    if bare:
        if value.count(":") > 1 and not value.startswith("["):
            value = f"[{value}]"  # a bare IPv6 address
        value = f"http://{value}"
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path:
        raise InvalidConfig(
            f"--advertised-url must be http(s)://host[:port] (or a host) with no path,"
            f" not {value!r}"
        )
    try:
        given_port = parsed.port
    except ValueError:
        raise InvalidConfig(f"--advertised-url has an invalid port: {value!r}") from None
    if bare and given_port is None:
        value = f"{value}:{port}"
    return value


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    data_dir: Path = Path("./minimq-data")
    # Where the log lives: "" the data directory, or nats://... a JetStream cluster.
    backend: str = ""
    replicas: int = 3
    nats_namespace: str = "minimq"
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
    # This broker's HTTP base URL for other brokers ("" : http://host:port, see http_url).
    advertised_url: str = ""
    # How long a group's ownership lease lasts unless renewed (shared backends only).
    group_lease_ms: int = 10_000
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
    # Resource bounds of the disk engine (minimq.storage.limits); None: its default.
    max_open_segment_files: int | None = None
    max_topics: int | None = None
    max_partitions: int | None = None
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
    def nats_servers(self) -> list[str] | None:
        """The JetStream cluster's URLs, None when the log is in the data directory."""
        return nats_servers(self.backend)

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
    def http_url(self) -> str:
        """The base URL other brokers forward group requests to (``--advertised-url``).

        By default ``http://host:port``; a wildcard host (0.0.0.0, ::) says nothing
        about where the broker can be reached, so 127.0.0.1 stands in for it: right
        for brokers on one machine, and the reason to set ``--advertised-url`` elsewhere.
        """
        if self.advertised_url:
            return advertised_url(self.advertised_url, self.port)
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

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
