"""Refusals that only the Kafka classic group protocol makes.

They sit under the existing branches of :mod:`minimq.errors` (a bad request,
a group conflict), so a transport that does not know them still answers
sensibly; the Kafka transport maps each to its own error code.
"""

from __future__ import annotations

from minimq.errors import GroupConflict, InvalidRequest


class MemberIdRequired(GroupConflict):
    """A JoinGroup v4+ without a member id: send it again with ``member_id`` (KIP-394)."""

    code = "MEMBER_ID_REQUIRED"

    def __init__(self, member_id: str) -> None:
        super().__init__(f"join again with the member id {member_id!r}")
        self.member_id = member_id


class InvalidSessionTimeout(InvalidRequest):
    """A session timeout outside the coordinator's bounds."""

    code = "INVALID_SESSION_TIMEOUT"


class InvalidGroupId(InvalidRequest):
    """A group id that is empty, longer than 249 characters or holds control characters.

    The bound is the HTTP API's, so every Kafka group can be read over HTTP too.
    """

    code = "INVALID_GROUP_ID"


class GroupInstanceIdNotSupported(InvalidRequest):
    """Static membership (``group.instance.id``, KIP-345) is not offered."""

    code = "GROUP_INSTANCE_ID_NOT_SUPPORTED"


class OffsetMetadataTooLarge(InvalidRequest):
    """A commit's metadata string is longer than the coordinator keeps."""

    code = "OFFSET_METADATA_TOO_LARGE"
