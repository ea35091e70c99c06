"""Consumer groups: the coordinator, the per-group state machine and the assignors.

The Kafka classic protocol lives in :mod:`~minimq.core.groups.kafka_protocol`
(``GroupCoordinator.kafka``), its refusals in
:mod:`~minimq.core.groups.kafka_errors`, and the ConsumerProtocol bytes it
reads for describe and lag in :mod:`~minimq.core.groups.consumer_protocol`.
"""

from minimq.core.groups.assignors import ASSIGNORS, range_assignment, roundrobin_assignment
from minimq.core.groups.coordinator import HTTP_PROTOCOL, GroupCoordinator
from minimq.core.groups.group import ALLOWED_TRANSITIONS, Group, GroupState, Member
from minimq.core.groups.kafka_errors import (
    GroupInstanceIdNotSupported,
    InvalidGroupId,
    InvalidSessionTimeout,
    MemberIdRequired,
    OffsetMetadataTooLarge,
)
from minimq.core.groups.kafka_protocol import (
    KAFKA_PROTOCOL,
    CommittedOffset,
    JoinedMember,
    JoinResult,
    KafkaGroupDescription,
    KafkaGroupListing,
    KafkaGroups,
    KafkaGroupSettings,
    KafkaMemberDescription,
    MemberLeave,
    OffsetCommitEntry,
    PartitionCommit,
    SyncResult,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ASSIGNORS",
    "HTTP_PROTOCOL",
    "KAFKA_PROTOCOL",
    "CommittedOffset",
    "Group",
    "GroupCoordinator",
    "GroupInstanceIdNotSupported",
    "GroupState",
    "InvalidGroupId",
    "InvalidSessionTimeout",
    "JoinResult",
    "JoinedMember",
    "KafkaGroupDescription",
    "KafkaGroupListing",
    "KafkaGroupSettings",
    "KafkaGroups",
    "KafkaMemberDescription",
    "Member",
    "MemberIdRequired",
    "MemberLeave",
    "OffsetCommitEntry",
    "OffsetMetadataTooLarge",
    "PartitionCommit",
    "SyncResult",
    "range_assignment",
    "roundrobin_assignment",
]
