"""Settings of the Kafka listener (filled from the broker's flags, ``--kafka-*``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

MIB = 1024 * 1024
# Kafka's socket.request.max.bytes.
DEFAULT_MAX_REQUEST_BYTES = 100 * MIB
# Kafka's broker-side fetch.max.bytes: no fetch answer is larger, whatever the client asks.
FETCH_MAX_BYTES = 55 * MIB
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """What the listener binds, advertises and accepts.

    ``advertised_host`` / ``advertised_port``: what Metadata tells clients to
    connect to; ``None`` means the bound address (see :meth:`advertised`).
    ``token``: when set, every API but ApiVersions and SASL needs SASL/PLAIN
    with the token as password first.
    """

    host: str = "127.0.0.1"
    port: int = 9092
    advertised_host: str | None = None
    advertised_port: int | None = None
    auto_create_topics: bool = True
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    token: str | None = None
    max_connections: int = 1024
    max_connections_per_address: int = 256
    # Bytes of request frames read and not yet handled, all connections together.
    request_buffer_bytes: int = 256 * MIB
    node_id: int = 0

    def advertised(self, bound_port: int) -> tuple[str, int]:
        """The (host, port) Metadata returns, given the port actually bound.

        A wildcard bind advertises the machine's host name: the only name
        that may reach it from elsewhere (``--kafka-advertised-host`` says
        which to use where it does not).
        """
        host = self.advertised_host
        if not host:
            host = socket.gethostname() if self.host in WILDCARD_HOSTS else self.host
        return host, self.advertised_port or bound_port

    @property
    def advertises_wildcard_guess(self) -> bool:
        """True when the advertised host is a guess (bound to a wildcard, none given)."""
        return not self.advertised_host and self.host in WILDCARD_HOSTS
