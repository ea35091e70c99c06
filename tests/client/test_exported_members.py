"""The public surface of ``minimq.client`` is exactly what is documented."""

from __future__ import annotations

import minimq.client


def test_public_names() -> None:
    assert set(minimq.client.__all__) == {
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
    }
    for name in minimq.client.__all__:
        assert getattr(minimq.client, name) is not None
