"""Kafka error codes for the core's errors: one table, translated once at this boundary.

Handlers never choose a code for a :class:`~minimq.errors.MiniMQError`
themselves; they call :func:`error_code_for`, which looks the error's class
and then each of its base classes up in :data:`_BY_MINIMQ_CODE` (keyed by the
stable MiniMQ code), so the most specific row wins and an error of a new
subclass gets its parent's code. What is not in the table is
UNKNOWN_SERVER_ERROR.

:class:`KafkaError` is for conditions only the Kafka transport knows (an
unsupported version, a failed SASL exchange): it carries its code directly.
"""

from __future__ import annotations

from typing import Final

from kio.schema.errors import ErrorCode

from minimq.errors import MiniMQError


class KafkaError(Exception):
    """A Kafka protocol error with its code, raised and answered inside the transport."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message or code.name


_BY_MINIMQ_CODE: Final[dict[str, ErrorCode]] = {
    "INTERNAL_ERROR": ErrorCode.unknown_server_error,
    "INVALID_REQUEST": ErrorCode.invalid_request,
    "INVALID_TOPIC_NAME": ErrorCode.invalid_topic_exception,
    "INVALID_CONFIG": ErrorCode.invalid_config,
    "INVALID_TIMESTAMP": ErrorCode.invalid_timestamp,
    "HEADERS_TOO_LARGE": ErrorCode.invalid_record,
    "UNAUTHORIZED": ErrorCode.sasl_authentication_failed,
    "NOT_FOUND": ErrorCode.unknown_topic_or_partition,
    "TOPIC_NOT_FOUND": ErrorCode.unknown_topic_or_partition,
    "PARTITION_NOT_FOUND": ErrorCode.unknown_topic_or_partition,
    "GROUP_NOT_FOUND": ErrorCode.group_id_not_found,
    "TOPIC_ALREADY_EXISTS": ErrorCode.topic_already_exists,
    # Kafka has no "too many topics"; a policy refusal is what its CreateTopics policy gives.
    "LIMIT_REACHED": ErrorCode.policy_violation,
    "TOPIC_LIMIT_REACHED": ErrorCode.policy_violation,
    "PARTITION_LIMIT_REACHED": ErrorCode.invalid_partitions,
    "GROUP_CONFLICT": ErrorCode.inconsistent_group_protocol,
    "MEMBER_FENCED": ErrorCode.illegal_generation,
    "STALE_GENERATION": ErrorCode.illegal_generation,
    "REBALANCE_IN_PROGRESS": ErrorCode.rebalance_in_progress,
    "UNKNOWN_MEMBER": ErrorCode.unknown_member_id,
    "NOT_PARTITION_OWNER": ErrorCode.illegal_generation,
    "GROUP_HAS_MEMBERS": ErrorCode.non_empty_group,
    "INCONSISTENT_GROUP_PROTOCOL": ErrorCode.inconsistent_group_protocol,
    # Another gateway owns the group's lease: the client finds the coordinator again.
    "NOT_COORDINATOR": ErrorCode.not_coordinator,
    # The Kafka classic group protocol (minimq.core.groups.kafka_protocol).
    "MEMBER_ID_REQUIRED": ErrorCode.member_id_required,
    "INVALID_SESSION_TIMEOUT": ErrorCode.invalid_session_timeout,
    "INVALID_GROUP_ID": ErrorCode.invalid_group_id,
    # Static membership (group.instance.id) is not supported.
    "GROUP_INSTANCE_ID_NOT_SUPPORTED": ErrorCode.invalid_request,
    "OFFSET_METADATA_TOO_LARGE": ErrorCode.offset_metadata_too_large,
    # A wait cut short by shutdown: retriable, the client finds the coordinator again.
    "BROKER_UNAVAILABLE": ErrorCode.coordinator_not_available,
    "REQUEST_TOO_LARGE": ErrorCode.record_list_too_large,
    "MESSAGE_TOO_LARGE": ErrorCode.message_too_large,
    "OFFSET_OUT_OF_RANGE": ErrorCode.offset_out_of_range,
    "REQUEST_TIMEOUT": ErrorCode.request_timed_out,
    "RESPONSE_BUFFER_FULL": ErrorCode.throttling_quota_exceeded,
    "STORAGE_ERROR": ErrorCode.kafka_storage_error,
    "STORAGE_FULL": ErrorCode.kafka_storage_error,
    "LOG_FAILED": ErrorCode.kafka_storage_error,
    "OFFSETS_FAILED": ErrorCode.kafka_storage_error,
    "CORRUPT_LOG": ErrorCode.kafka_storage_error,
    # Raw RecordBatch produce and idempotent producers (minimq.core.batch_errors).
    "CORRUPT_BATCH": ErrorCode.corrupt_message,
    "INVALID_RECORD": ErrorCode.invalid_record,
    "UNSUPPORTED_COMPRESSION": ErrorCode.unsupported_compression_type,
    "TRANSACTIONS_UNSUPPORTED": ErrorCode.invalid_txn_state,
    "OUT_OF_ORDER_SEQUENCE": ErrorCode.out_of_order_sequence_number,
    "INVALID_PRODUCER_EPOCH": ErrorCode.invalid_producer_epoch,
    "UNKNOWN_PRODUCER_ID": ErrorCode.unknown_producer_id,
}


def error_code_for(exc: BaseException) -> ErrorCode:
    """The Kafka error code of ``exc`` (UNKNOWN_SERVER_ERROR for what the table lacks)."""
    if isinstance(exc, KafkaError):
        return exc.code
    if isinstance(exc, MiniMQError):
        for cls in type(exc).__mro__:
            code = getattr(cls, "code", None)
            if isinstance(code, str) and code in _BY_MINIMQ_CODE:
                return _BY_MINIMQ_CODE[code]
    return ErrorCode.unknown_server_error
