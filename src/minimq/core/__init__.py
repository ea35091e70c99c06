"""The transport-agnostic broker: topics, produce, fetch, consumer groups, streams."""

from minimq.core.broker import Broker, BrokerSettings
from minimq.core.groups import GroupCoordinator
from minimq.core.models import (
    CommitOffset,
    ConsumedMessage,
    FetchLimits,
    FetchResult,
    GroupFetchResult,
    GroupInfo,
    GroupMembership,
    GroupOffset,
    GroupSummary,
    MemberInfo,
    PartitionInfo,
    PartitionRecord,
    ProduceRecord,
    RecordPosition,
    RecordPositions,
    ResetPolicy,
    StartPosition,
    TopicInfo,
)
from minimq.core.observer import BrokerObserver

__all__ = [
    "Broker",
    "BrokerObserver",
    "BrokerSettings",
    "CommitOffset",
    "ConsumedMessage",
    "FetchLimits",
    "FetchResult",
    "GroupCoordinator",
    "GroupFetchResult",
    "GroupInfo",
    "GroupMembership",
    "GroupOffset",
    "GroupSummary",
    "MemberInfo",
    "PartitionInfo",
    "PartitionRecord",
    "ProduceRecord",
    "RecordPosition",
    "RecordPositions",
    "ResetPolicy",
    "StartPosition",
    "TopicInfo",
]
