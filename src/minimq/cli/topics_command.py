"""``minimq topics list|create|describe|delete``: manage topics on a broker."""

from __future__ import annotations

import argparse

from minimq.cli.client_support import (
    add_table_command_options,
    client_from_args,
    print_json,
    print_table,
    reports_errors,
)
from minimq.client import TopicInfo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("topics", help="list, create, describe and delete topics")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="one line per topic")
    add_table_command_options(listing)
    listing.set_defaults(handler=reports_errors(_list))

    create = actions.add_parser("create", help="create a topic")
    add_table_command_options(create)
    create.add_argument("name")
    create.add_argument("-p", "--partitions", type=int, default=1, help="default %(default)s")
    create.add_argument("--retention-ms", type=int, help="delete segments older than this")
    create.add_argument("--retention-bytes", type=int, help="keep at most this much per partition")
    create.add_argument("--segment-bytes", type=int, help="roll segments at this size")
    create.add_argument(
        "--fsync", help="'always', 'interval:<ms>' or 'never' (default: the broker's policy)"
    )
    create.add_argument(
        "--message-timestamp-before-max-ms",
        type=int,
        help="refuse records stamped more than this before broker time (default: the broker's)",
    )
    create.add_argument(
        "--message-timestamp-after-max-ms",
        type=int,
        help="refuse records stamped more than this after broker time (default: the broker's)",
    )
    create.set_defaults(handler=reports_errors(_create))

    describe = actions.add_parser("describe", help="configuration and per-partition offsets")
    add_table_command_options(describe)
    describe.add_argument("name")
    describe.set_defaults(handler=reports_errors(_describe))

    delete = actions.add_parser("delete", help="delete a topic and all its records")
    add_table_command_options(delete)
    delete.add_argument("name")
    delete.set_defaults(handler=reports_errors(_delete))


def _list(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        topics = client.list_topics()
    if args.json:
        print_json(topics)
        return 0
    rows = [(t.name, str(t.partitions), str(t.messages), str(t.bytes)) for t in topics]
    print_table(("TOPIC", "PARTITIONS", "MESSAGES", "BYTES"), rows)
    return 0


def _create(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        topic = client.create_topic(
            args.name,
            partitions=args.partitions,
            retention_ms=args.retention_ms,
            retention_bytes=args.retention_bytes,
            segment_bytes=args.segment_bytes,
            fsync=args.fsync,
            message_timestamp_before_max_ms=args.message_timestamp_before_max_ms,
            message_timestamp_after_max_ms=args.message_timestamp_after_max_ms,
        )
    if args.json:
        print_json(topic)
    else:
        print(f"created topic {topic.name} with {topic.partitions} partition(s)")
    return 0


def _describe(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        topic = client.describe_topic(args.name)
    if args.json:
        print_json(topic)
    else:
        _print_topic(topic)
    return 0


def _delete(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        client.delete_topic(args.name)
    if not args.json:
        print(f"deleted topic {args.name}")
    return 0


def _print_topic(topic: TopicInfo) -> None:
    print(f"topic {topic.name}: {topic.partitions} partition(s), {topic.messages} messages")
    settings = ", ".join(f"{name}={value}" for name, value in topic.config.items())
    print(f"config: {settings}")
    rows = [
        (str(p.partition), str(p.start_offset), str(p.end_offset), str(p.messages), str(p.bytes))
        for p in topic.partition_info
    ]
    print_table(("PARTITION", "START", "END", "MESSAGES", "BYTES"), rows)
