"""What every benchmarked broker provides: a server to start and an asyncio session to drive it.

A :class:`Peer` is one broker at one durability setting. It knows how to start
its server (:class:`~minimq.bench.peers.process.ServerProcess`) and how to
connect a :class:`Session`, the broker-specific half of every workload. The
workloads in :mod:`minimq.bench.workloads` only ever call :class:`Session`
methods, so the three brokers run the same measurement code.

Values are ASCII strings of a fixed length (100 characters by default): MiniMQ
stores them as JSON strings, NATS and Redis as the same bytes.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from minimq.bench.peers.process import ServerProcess


class Durability(enum.Enum):
    """The two settings each broker is compared at."""

    STRONGEST = "strongest"
    DEFAULTS = "defaults"


class Session(ABC):
    """A connected client of one broker; used by one asyncio event loop.

    A *topic* is a MiniMQ topic with one partition, a JetStream stream with one
    subject of the same name, or a Redis stream key. Every method may be called
    concurrently from tasks of the session's loop unless it says otherwise.
    """

    @abstractmethod
    async def create_topic(self, topic: str, *, bulk_load: bool = False) -> None:
        """Create an empty topic; ``bulk_load`` relaxes durability where the broker allows
        it per topic (used only to build the large partitions of the cost-growth test)."""

    @abstractmethod
    async def produce_one(self, topic: str, value: str) -> None:
        """Send one message and wait until the broker acknowledged it."""

    @abstractmethod
    async def produce_batch(self, topic: str, values: Sequence[str]) -> None:
        """Send ``values`` in one batch or pipeline and wait for every acknowledgement."""

    @abstractmethod
    async def consume(self, topic: str, count: int, batch: int, deadline: float) -> int:
        """Read the topic from its start, ``batch`` messages per request, until ``count``
        messages were read or ``time.perf_counter()`` passed ``deadline``; return how many.
        Not reentrant for the same topic."""

    @abstractmethod
    async def follow(
        self, topic: str, count: int, on_value: Callable[[str], None], deadline: float
    ) -> None:
        """Deliver each message of the topic, from its start, to ``on_value`` as soon as it
        arrives, until ``count`` arrived or ``deadline`` (``perf_counter``) passed."""

    @abstractmethod
    async def read_last(self, topic: str, count: int) -> None:
        """Read the last of the ``count`` messages in the topic (one request)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the session is unusable afterwards."""


class Peer(ABC):
    """One broker at one durability setting."""

    broker: str
    """Display name of the broker, e.g. ``"MiniMQ"``."""
    relaxes_per_topic: bool = False
    """Whether ``Session.create_topic(bulk_load=True)`` really relaxes durability."""
    measures_growth: bool = True
    """Whether this peer takes part in the cost-growth test."""

    def __init__(self, durability: Durability, setting: str) -> None:
        self.durability = durability
        self.setting = setting
        """The durability setting in the broker's own words, e.g. ``appendfsync always``."""

    @property
    def label(self) -> str:
        return f"{self.broker} ({self.setting})"

    def unavailable_reason(self) -> str | None:
        """Why this peer cannot run on this machine (missing binary or module), or ``None``."""
        return None

    @abstractmethod
    def server(self) -> ServerProcess:
        """A new, not yet started server with its own temp directory."""

    @abstractmethod
    async def connect(self, server: ServerProcess) -> Session:
        """A session on the started ``server``."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Server and client library versions, for the report."""

    def wrk_url(self, server: ServerProcess) -> str | None:
        """Base URL of an HTTP/JSON API to load with wrk (the raw-HTTP rows), or ``None``."""
        return None

    def kafka_bootstrap(self, server: ServerProcess) -> str | None:
        """``host:port`` of a Kafka-protocol listener (the Kafka rows), or ``None``."""
        return None
