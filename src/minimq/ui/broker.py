"""The broker as the UI sees it: one shared client, typed errors to HTTP statuses.

The application owns one :class:`minimq.client.Client`; the client is
thread-safe (a pooled urllib3 connection pool), so every waitress thread shares it
and its keep-alive connections.  The UI client does not retry with backoff: a
page or a live poll must report a broker outage within its one-second rhythm,
and the browser's next poll *is* the retry.  Given several broker URLs
(gateways over one cluster) it still tries each once per call, so a page is
served by whichever answers (:mod:`minimq.client._failover`).
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask, current_app

from minimq.client import Client
from minimq.errors import (
    BrokerUnavailable,
    GroupConflict,
    InvalidRequest,
    MessageTooLarge,
    MiniMQError,
    NotFound,
    OffsetOutOfRange,
    RequestTimeout,
    RequestTooLarge,
    StorageError,
    TooManyConnections,
    TopicAlreadyExists,
    Unauthorized,
)

EXTENSION_KEY = "minimq_client"

# Statuses the UI answers with when a broker call fails.  A broker that
# rejects the UI's own credentials is a gateway problem (502), not the
# user's; the first matching class wins, so subclasses come first.
UI_STATUS_BY_ERROR: tuple[tuple[type[MiniMQError], int], ...] = (
    (BrokerUnavailable, 503),
    (TooManyConnections, 503),
    (StorageError, 503),
    (RequestTimeout, 504),
    (Unauthorized, 502),
    (NotFound, 404),
    (InvalidRequest, 400),
    (TopicAlreadyExists, 409),
    (GroupConflict, 409),
    (RequestTooLarge, 413),
    (MessageTooLarge, 413),
    (OffsetOutOfRange, 416),
)


def status_for(error: MiniMQError) -> int:
    for error_class, status in UI_STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return 500


def attach_client(
    app: Flask, broker_url: str | Sequence[str], token: str | None, timeout: float
) -> Client:
    client = Client(broker_url, token=token, timeout=timeout, retries=0)
    app.extensions[EXTENSION_KEY] = client
    return client


def unreachable_message(urls: Sequence[str]) -> str:
    """What the outage banner and error pages say: the URLs the UI tried."""
    if len(urls) == 1:
        return f"The UI cannot reach the broker at {urls[0]}."
    return f"The UI cannot reach any of the brokers at {', '.join(urls)}."


def close_client(app: Flask) -> None:
    """Close the application's client (its pooled connections); for tests and embedders."""
    client: Client | None = app.extensions.pop(EXTENSION_KEY, None)
    if client is not None:
        client.close()


def broker() -> Client:
    """The application's broker client."""
    client: Client = current_app.extensions[EXTENSION_KEY]
    return client
