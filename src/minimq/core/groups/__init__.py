"""Consumer groups: the coordinator, the per-group state machine and the assignors."""

from minimq.core.groups.assignors import ASSIGNORS, range_assignment, roundrobin_assignment
from minimq.core.groups.coordinator import HTTP_PROTOCOL, GroupCoordinator
from minimq.core.groups.group import ALLOWED_TRANSITIONS, Group, GroupState, Member

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ASSIGNORS",
    "HTTP_PROTOCOL",
    "Group",
    "GroupCoordinator",
    "GroupState",
    "Member",
    "range_assignment",
    "roundrobin_assignment",
]
