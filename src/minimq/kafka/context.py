"""What a Kafka API handler knows about the request it answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from minimq.core import Broker
from minimq.kafka.codec import build, nested_type
from minimq.kafka.settings import KafkaSettings

if TYPE_CHECKING:
    from minimq.kafka.registry import ApiHandler


@dataclass(slots=True)
class Session:
    """Per-connection state: SASL (:mod:`minimq.kafka.sasl`) and closing.

    ``raw_authentication_next``: after SaslHandshake v0 the client sends its
    SASL bytes as one bare frame, without a Kafka request header.
    """

    authenticated: bool = False
    principal: str | None = None
    mechanism: str | None = None
    raw_authentication_next: bool = False
    # Set by a handler to close the connection once its response is written.
    close_after_response: bool = False


@dataclass(slots=True)
class RequestContext:
    """One request: the core to call, who sent it, and builders for its response.

    ``response`` and ``make`` take the fields of every version at once and
    keep those ``api_version`` has, so handlers need no version ladders.
    """

    broker: Broker
    settings: KafkaSettings
    apis: Mapping[int, ApiHandler]
    client_host: str
    client_port: int
    client_id: str | None
    api_key: int
    api_version: int
    correlation_id: int
    response_type: type[Any]
    # (host, port) Metadata and FindCoordinator advertise for node settings.node_id.
    advertised: tuple[str, int]
    session: Session = field(default_factory=Session)

    @property
    def principal(self) -> str | None:
        """The SASL user name once authenticated; None on a broker without a token."""
        return self.session.principal

    def response(self, **fields: Any) -> Any:
        """The response of this request's version, from the fields it has."""
        return build(self.response_type, fields)

    def make(self, entity: str, /, **fields: Any) -> Any:
        """A nested entity of this version's response (e.g. ``"MetadataResponseBroker"``)."""
        return build(nested_type(self.response_type, entity), fields)
