"""One error tree for every layer, each error carrying a stable upper-case code.

::

    MiniMQError                      INTERNAL_ERROR
    ├── InvalidRequest               INVALID_REQUEST
    │   ├── InvalidTopicName         INVALID_TOPIC_NAME
    │   ├── InvalidConfig            INVALID_CONFIG
    │   ├── InvalidTimestamp         INVALID_TIMESTAMP
    │   ├── IdempotencyKeyReused     IDEMPOTENCY_KEY_REUSED
    │   └── HeadersTooLarge          HEADERS_TOO_LARGE
    ├── Unauthorized                 UNAUTHORIZED
    ├── NotFound                     NOT_FOUND
    │   ├── TopicNotFound            TOPIC_NOT_FOUND
    │   ├── PartitionNotFound        PARTITION_NOT_FOUND
    │   └── GroupNotFound            GROUP_NOT_FOUND
    ├── TopicAlreadyExists           TOPIC_ALREADY_EXISTS
    ├── LimitReached                 LIMIT_REACHED
    │   ├── TopicLimitReached        TOPIC_LIMIT_REACHED
    │   └── PartitionLimitReached    PARTITION_LIMIT_REACHED
    ├── GroupConflict                GROUP_CONFLICT
    │   ├── MemberFenced             MEMBER_FENCED        (rejoin, then go on)
    │   │   ├── StaleGeneration      STALE_GENERATION
    │   │   ├── RebalanceInProgress  REBALANCE_IN_PROGRESS
    │   │   ├── UnknownMember        UNKNOWN_MEMBER
    │   │   └── NotPartitionOwner    NOT_PARTITION_OWNER
    │   ├── GroupHasMembers          GROUP_HAS_MEMBERS
    │   └── InconsistentGroupProtocol INCONSISTENT_GROUP_PROTOCOL
    ├── NotCoordinator               NOT_COORDINATOR      (retry: another gateway owns the group)
    ├── RequestTooLarge              REQUEST_TOO_LARGE
    ├── MessageTooLarge              MESSAGE_TOO_LARGE
    ├── OffsetOutOfRange             OFFSET_OUT_OF_RANGE
    ├── RequestTimeout               REQUEST_TIMEOUT
    ├── ExpectationFailed            EXPECTATION_FAILED
    ├── TooManyConnections           TOO_MANY_CONNECTIONS
    ├── ResponseBufferFull           RESPONSE_BUFFER_FULL (retry shortly)
    ├── StorageError                 STORAGE_ERROR
    │   ├── StorageFull              STORAGE_FULL
    │   ├── LogFailed                LOG_FAILED
    │   ├── OffsetsFailed            OFFSETS_FAILED
    │   ├── CorruptLog               CORRUPT_LOG
    │   └── DataDirLocked            DATA_DIR_LOCKED
    └── BrokerUnavailable            BROKER_UNAVAILABLE   (client side only)
        └── OutcomeUnknown           OUTCOME_UNKNOWN      (client side only: may have been applied)

The HTTP server maps codes to status codes in exactly one place
(``minimq.server.errors``); the client maps codes back to these classes with
:func:`error_for_code`.  Codes are part of the public API and never change.

An error may carry ``details``: JSON-ready facts about what did happen despite
it (a produce that stored some of its partitions lists them), sent beside the
code and message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MiniMQError(Exception):
    """Base of every MiniMQ error; ``code`` is stable and machine-readable."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    details: dict[str, Any] | None = None

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class InvalidRequest(MiniMQError):
    code = "INVALID_REQUEST"


class InvalidTopicName(InvalidRequest):
    code = "INVALID_TOPIC_NAME"


class InvalidConfig(InvalidRequest):
    code = "INVALID_CONFIG"


class InvalidTimestamp(InvalidRequest):
    """A record's timestamp lies outside the topic's accepted window."""

    code = "INVALID_TIMESTAMP"


class IdempotencyKeyReused(InvalidRequest):
    """An ``Idempotency-Key`` already used for a produce of other records (HTTP 422)."""

    code = "IDEMPOTENCY_KEY_REUSED"


class HeadersTooLarge(InvalidRequest):
    """A record carries more headers, or more header bytes, than the broker accepts."""

    code = "HEADERS_TOO_LARGE"


class Unauthorized(MiniMQError):
    code = "UNAUTHORIZED"


class NotFound(MiniMQError):
    code = "NOT_FOUND"


class TopicNotFound(NotFound):
    code = "TOPIC_NOT_FOUND"


class PartitionNotFound(NotFound):
    code = "PARTITION_NOT_FOUND"


class GroupNotFound(NotFound):
    code = "GROUP_NOT_FOUND"


class TopicAlreadyExists(MiniMQError):
    code = "TOPIC_ALREADY_EXISTS"


class LimitReached(MiniMQError):
    """A creation would pass one of the broker's configured resource bounds; nothing was made."""

    code = "LIMIT_REACHED"


class TopicLimitReached(LimitReached):
    """The broker holds ``--max-topics`` topics already."""

    code = "TOPIC_LIMIT_REACHED"


class PartitionLimitReached(LimitReached):
    """The new topic's partitions would take all topics past ``--max-partitions``."""

    code = "PARTITION_LIMIT_REACHED"


class GroupConflict(MiniMQError):
    """A group request that the group's current state does not allow."""

    code = "GROUP_CONFLICT"


class MemberFenced(GroupConflict):
    """The member's view of the group is out of date: rejoin, then go on.

    Nothing the refused request asked for happened (no record handed out, no
    offset committed).
    """

    code = "MEMBER_FENCED"


class StaleGeneration(MemberFenced):
    """The request carries a generation the group has moved past."""

    code = "STALE_GENERATION"


class RebalanceInProgress(MemberFenced):
    """The group is between generations; rejoin to take part in the next one."""

    code = "REBALANCE_IN_PROGRESS"


class UnknownMember(MemberFenced):
    """The member id is not (or no longer) a live member of the group."""

    code = "UNKNOWN_MEMBER"


class NotPartitionOwner(MemberFenced):
    """The member does not own a partition it tried to commit in this generation."""

    code = "NOT_PARTITION_OWNER"


class GroupHasMembers(GroupConflict):
    """A read or commit without membership while the group has live members."""

    code = "GROUP_HAS_MEMBERS"


class InconsistentGroupProtocol(GroupConflict):
    """A member of one protocol type (http, kafka) tried to join a group of the other."""

    code = "INCONSISTENT_GROUP_PROTOCOL"


class NotCoordinator(MiniMQError):
    """Another gateway coordinates this group and the request could not be passed on to it.

    Nothing happened; the request may be sent again (to any gateway) shortly.
    """

    code = "NOT_COORDINATOR"


class RequestTooLarge(MiniMQError):
    code = "REQUEST_TOO_LARGE"


class MessageTooLarge(MiniMQError):
    code = "MESSAGE_TOO_LARGE"


class OffsetOutOfRange(MiniMQError):
    code = "OFFSET_OUT_OF_RANGE"


class RequestTimeout(MiniMQError):
    code = "REQUEST_TIMEOUT"


class ExpectationFailed(MiniMQError):
    """The request's ``Expect`` header asks for something other than ``100-continue``."""

    code = "EXPECTATION_FAILED"


class TooManyConnections(MiniMQError):
    code = "TOO_MANY_CONNECTIONS"


class ResponseBufferFull(MiniMQError):
    """The broker's budget for answers waiting on slow readers is spent; nothing was handed out."""

    code = "RESPONSE_BUFFER_FULL"


class StorageError(MiniMQError):
    """The log could not do what was asked; nothing was acknowledged."""

    code = "STORAGE_ERROR"


class StorageFull(StorageError):
    """A write failed with ENOSPC (or EDQUOT)."""

    code = "STORAGE_FULL"


class LogFailed(StorageError):
    """A write or fsync failed earlier; the log refuses appends until reopened."""

    code = "LOG_FAILED"


class OffsetsFailed(StorageError):
    """A write of the offsets store failed; it refuses every commit until reopened.

    The commit that failed never takes effect, not even after a crash.
    """

    code = "OFFSETS_FAILED"


class CorruptLog(StorageError):
    """A sealed segment holds a batch that fails its CRC (never skipped silently)."""

    code = "CORRUPT_LOG"


class DataDirLocked(StorageError):
    """Another broker process holds the data directory's lock file."""

    code = "DATA_DIR_LOCKED"


class BrokerUnavailable(MiniMQError):
    """Client side: the broker could not be reached or did not answer in time."""

    code = "BROKER_UNAVAILABLE"


class OutcomeUnknown(BrokerUnavailable):
    """Client side: a call that is not safe to repeat got no answer, so it was not sent again.

    The broker may or may not have applied it; the caller decides (read back,
    or resend a produce with an ``idempotency_key``, which is safe to repeat).
    """

    code = "OUTCOME_UNKNOWN"


def _all_subclasses(cls: type[MiniMQError]) -> list[type[MiniMQError]]:
    found: list[type[MiniMQError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


ERRORS_BY_CODE: dict[str, type[MiniMQError]] = {c.code: c for c in _all_subclasses(MiniMQError)}


def error_for_code(code: str, message: str) -> MiniMQError:
    """Rebuild the typed error for a code received over the wire."""
    return ERRORS_BY_CODE.get(code, MiniMQError)(message)
