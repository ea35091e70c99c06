"""Python client for the MiniMQ broker's HTTP/JSON API.

- :class:`Client` / :class:`AsyncClient`: one method per endpoint (topics,
  produce, fetch, consumer groups, live stream), typed results, broker errors
  raised as :mod:`minimq.errors` classes carrying the broker's code.
- :class:`Producer`: batching, background sending, futures, back-pressure.
- :class:`Consumer`: a consumer-group member with at-least-once commits.

This package talks HTTP only; it never imports the broker's own modules.
"""

from minimq.client._async_client import AsyncClient
from minimq.client._client import DEFAULT_BROKER_URL, Client
from minimq.client._consumer import Consumer
from minimq.client._models import (
    FetchResult,
    GroupFetchResult,
    GroupInfo,
    GroupMember,
    GroupMembership,
    GroupOffset,
    GroupSummary,
    PartitionInfo,
    Record,
    RecordMetadata,
    TopicInfo,
)
from minimq.client._producer import Producer
from minimq.client._raw_fetch import RawFetchPage

__all__ = [
    "DEFAULT_BROKER_URL",
    "AsyncClient",
    "Client",
    "Consumer",
    "FetchResult",
    "GroupFetchResult",
    "GroupInfo",
    "GroupMember",
    "GroupMembership",
    "GroupOffset",
    "GroupSummary",
    "PartitionInfo",
    "Producer",
    "RawFetchPage",
    "Record",
    "RecordMetadata",
    "TopicInfo",
]
