"""``minimq groups list|describe|reset|delete``: inspect and move consumer groups."""

from __future__ import annotations

import argparse
import sys

from minimq.cli.client_support import (
    EXIT_USAGE,
    add_table_command_options,
    client_from_args,
    print_json,
    print_table,
    reports_errors,
)
from minimq.client import GroupInfo

RESET_TARGETS = ("earliest", "latest", "offset", "timestamp")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("groups", help="list, describe, reset and delete groups")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="one line per group")
    add_table_command_options(listing)
    listing.set_defaults(handler=reports_errors(_list))

    describe = actions.add_parser("describe", help="members, committed offsets and lag")
    add_table_command_options(describe)
    describe.add_argument("group")
    describe.set_defaults(handler=reports_errors(_describe))

    reset = actions.add_parser(
        "reset", help="move a group's committed offsets on a topic (live members follow)"
    )
    add_table_command_options(reset)
    reset.add_argument("group")
    reset.add_argument("-t", "--topic", required=True)
    reset.add_argument("--to", choices=RESET_TARGETS, required=True)
    reset.add_argument("--offset", type=int, help="the offset for --to offset")
    reset.add_argument("--timestamp", type=int, help="epoch milliseconds for --to timestamp")
    reset.add_argument("-p", "--partition", type=int, help="only this partition (default: all)")
    reset.set_defaults(handler=reports_errors(_reset))

    delete = actions.add_parser("delete", help="forget a group and its committed offsets")
    add_table_command_options(delete)
    delete.add_argument("group")
    delete.set_defaults(handler=reports_errors(_delete))


def _list(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        groups = client.list_groups()
    if args.json:
        print_json(groups)
        return 0
    rows = [
        (g.group, ",".join(g.topics), str(g.members), g.state, f"{g.total_lag:,}") for g in groups
    ]
    print_table(("GROUP", "TOPICS", "MEMBERS", "STATE", "LAG"), rows)
    return 0


def _describe(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        _show(client.describe_group(args.group), args.json)
    return 0


def _reset(args: argparse.Namespace) -> int:
    if (args.to == "offset") != (args.offset is not None) or (args.to == "timestamp") != (
        args.timestamp is not None
    ):
        print(
            "minimq: --offset goes with --to offset, --timestamp with --to timestamp",
            file=sys.stderr,
        )
        return EXIT_USAGE
    with client_from_args(args) as client:
        group = client.reset_group(
            args.group,
            args.topic,
            to=args.to,
            offset=args.offset,
            timestamp=args.timestamp,
            partition=args.partition,
        )
    _show(group, args.json)
    return 0


def _delete(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        client.delete_group(args.group)
    if not args.json:
        print(f"deleted group {args.group}")
    return 0


def _show(group: GroupInfo, as_json: bool) -> None:
    if as_json:
        print_json(group)
        return
    members = len({m.member_id for m in group.members})
    protocol = f" {group.protocol_type}" if group.protocol_type else ""
    print(
        f"group {group.group}:{protocol} {members} member(s), {group.state},"
        f" generation {group.generation}, total lag {group.total_lag:,}"
    )
    offsets = [
        (
            o.topic,
            str(o.partition),
            "-" if o.committed_offset is None else str(o.committed_offset),
            str(o.end_offset),
            str(o.lag),
        )
        for o in group.offsets
    ]
    print_table(("TOPIC", "PARTITION", "COMMITTED", "END", "LAG"), offsets)
    if group.members:
        print()
        rows = [
            (m.member_id, m.topic or "-", ",".join(map(str, m.partitions)) or "-")
            for m in group.members
        ]
        print_table(("MEMBER", "TOPIC", "PARTITIONS"), rows)
