"""Both clients against a server that accepts connections and never answers.

Each attempt opens a new connection (a timed-out one is never reused), so the
connections waiting in the listener's backlog count the attempts exactly.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from minimq.client import AsyncClient, Client
from minimq.errors import BrokerUnavailable

TIMEOUT = 0.2
RETRIES = 2


class SilentServer:
    """A listening socket nobody accepts on: connects succeed, requests get no answer."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def attempts(self) -> int:
        """How many connections were made (accepting and closing them)."""
        self._listener.setblocking(False)
        count = 0
        while True:
            try:
                connection, _ = self._listener.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_sync_read_timeout_is_unavailable_and_produce_is_sent_once(silent: SilentServer) -> None:
    with Client(silent.url, timeout=TIMEOUT, retries=RETRIES) as client:
        with pytest.raises(BrokerUnavailable):
            client.produce("t", "maybe stored")
        assert silent.attempts() == 1
        with pytest.raises(BrokerUnavailable):
            client.fetch("t", 0)
        assert silent.attempts() == 1 + RETRIES


async def test_async_read_timeout_is_unavailable_and_produce_is_sent_once(
    silent: SilentServer,
) -> None:
    async with AsyncClient(silent.url, timeout=TIMEOUT, retries=RETRIES) as client:
        with pytest.raises(BrokerUnavailable):
            await client.produce("t", "maybe stored")
        assert silent.attempts() == 1
        with pytest.raises(BrokerUnavailable):
            await client.fetch("t", 0)
        assert silent.attempts() == 1 + RETRIES
