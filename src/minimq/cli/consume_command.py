"""``minimq consume TOPIC``: print a topic's records to stdout.

Without ``--group`` the partitions are read directly (all of them, or
``--partition``), concurrently, starting at ``--from`` (``earliest``,
``latest`` or an offset); records of one partition come out in order.  With
``--group`` the command is a member of that consumer group: it reads the
partitions the broker assigns it from the group's committed offsets
(``--from earliest|latest`` only applies where nothing is committed yet) and
commits after printing each batch (at-least-once).

Without ``--follow`` the command exits once it has caught up (the end
offsets at its start, or an empty poll of the group); with it, it waits for
new records until interrupted.  ``--count N`` stops after N records.
``--format value`` (default) prints each value (strings as they are, other
values as JSON; a value that is not JSON, from a Kafka producer say, as its
text when it is UTF-8, else as ``base64:`` and its base64); ``--format
json`` prints each record as one JSON object, as the HTTP API writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from base64 import b64encode
from collections.abc import Callable
from typing import Any, Literal

import orjson

from minimq.cli.client_support import (
    EXIT_USAGE,
    client_from_args,
    progress_bar,
    reports_errors,
)
from minimq.cli.options import add_client_options
from minimq.client import AsyncClient, Consumer, Record

# Long-poll length while following: short enough to notice Ctrl-C promptly.
FOLLOW_WAIT_MS = 5000
# How long a group member waits for records before deciding it has caught up.
CATCH_UP_WAIT_MS = 1000
FETCH_LIMIT = 1000
# Starts a --format value line whose value is binary (neither JSON nor UTF-8 text).
BASE64_MARK = "base64:"


OffsetSpec = int | Literal["earliest", "latest"]


class _CountReached(Exception):
    """Raised inside the partition readers once ``--count`` records were printed."""


def offset_spec(text: str) -> OffsetSpec:
    if text in ("earliest", "latest"):
        return text  # type: ignore[return-value]
    try:
        offset = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected earliest, latest or an offset: {text!r}"
        ) from None
    if offset < 0:
        raise argparse.ArgumentTypeError(f"offset must not be negative: {text!r}")
    return offset


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "consume",
        help="print a topic's records to stdout",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_client_options(parser)
    parser.add_argument("topic")
    parser.add_argument("-g", "--group", help="consume as a member of this consumer group")
    parser.add_argument("-p", "--partition", type=int, help="only this partition (not with -g)")
    parser.add_argument(
        "-o",
        "--from",
        dest="start",
        type=offset_spec,
        default="earliest",
        help="earliest (default), latest or an offset",
    )
    parser.add_argument("-F", "--follow", action="store_true", help="keep waiting for records")
    parser.add_argument("-c", "--count", type=int, help="stop after this many records")
    parser.add_argument(
        "-f", "--format", choices=("value", "json"), default="value", help="output format"
    )
    parser.set_defaults(handler=reports_errors(run))


class Printer:
    """Writes records to stdout in the chosen format and counts them against ``--count``."""

    def __init__(self, fmt: str, count: int | None, write: Callable[[str], None]) -> None:
        self._format = fmt
        self._remaining = count
        self._write = write
        self.printed = 0

    @property
    def remaining(self) -> int | None:
        return self._remaining

    def emit(self, record: Record) -> None:
        if self._format == "json":
            line = orjson.dumps(record_json(record)).decode()
        elif record.value_bytes is not None:
            line = value_bytes_line(record.value_bytes)
        elif isinstance(record.value, str):
            line = record.value
        else:
            line = orjson.dumps(record.value).decode()
        self._write(line)
        self.printed += 1
        if self._remaining is not None:
            self._remaining -= 1
            if self._remaining <= 0:
                raise _CountReached


def value_bytes_line(value: bytes) -> str:
    """A value that is not JSON: its text when it is UTF-8, else ``base64:`` and its base64."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return BASE64_MARK + b64encode(value).decode("ascii")


def record_json(record: Record) -> dict[str, Any]:
    """``record`` as the broker's API writes a Record, ``*_b64`` fields included."""
    out: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": record.key,
    }
    if record.key_bytes is not None:
        out["key_b64"] = b64encode(record.key_bytes).decode("ascii")
    out["value"] = record.value
    if record.value_bytes is not None:
        out["value_b64"] = b64encode(record.value_bytes).decode("ascii")
    out["headers"] = record.headers
    if record.headers_bytes:
        out["headers_b64"] = {
            name: b64encode(value).decode("ascii") for name, value in record.headers_bytes.items()
        }
    return out


def run(args: argparse.Namespace) -> int:
    if args.group and (args.partition is not None or isinstance(args.start, int)):
        print(
            "minimq: with --group the broker assigns partitions and offsets; use "
            "--from earliest|latest, or `minimq groups reset` to move the group",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.count is not None and args.count <= 0:
        return 0
    with progress_bar(args.count, "rec", f"consume {args.topic}") as bar:

        def write(line: str) -> None:
            if bar.disable:
                sys.stdout.write(line + "\n")
            else:
                bar.write(line, file=sys.stdout)
                bar.update()

        printer = Printer(args.format, args.count, write)
        try:
            if args.group:
                _consume_group(args, printer)
            else:
                asyncio.run(_consume_partitions(args, printer))
        except _CountReached:
            pass
        finally:
            sys.stdout.flush()
    return 0


def _consume_group(args: argparse.Namespace, printer: Printer) -> None:
    client = client_from_args(args)
    wait_ms = FOLLOW_WAIT_MS if args.follow else CATCH_UP_WAIT_MS
    with (
        client,
        Consumer(
            client,
            args.group,
            args.topic,
            auto_commit_interval_ms=None,
            auto_offset_reset=args.start,
        ) as consumer,
    ):
        while True:
            # Never take more than --count allows: the whole poll is committed.
            records = consumer.poll(wait_ms, max_records=printer.remaining)
            if not records and not args.follow:
                return
            try:
                for record in records:
                    printer.emit(record)
            finally:
                sys.stdout.flush()
                consumer.commit()


async def _consume_partitions(args: argparse.Namespace, printer: Printer) -> None:
    async with AsyncClient(args.broker_url, token=args.token) as client:
        topic = await client.describe_topic(args.topic)
        ends = {p.partition: p.end_offset for p in topic.partition_info}
        partitions = [args.partition] if args.partition is not None else sorted(ends)
        try:
            async with asyncio.TaskGroup() as readers:
                for partition in partitions:
                    readers.create_task(
                        _read_partition(client, args, partition, ends.get(partition, 0), printer)
                    )
        except BaseExceptionGroup as failed:
            # The first reader to stop (count reached, closed stdout, broker error)
            # cancelled the others: report that one, as a plain exception.
            raise failed.exceptions[0] from None


async def _read_partition(
    client: AsyncClient, args: argparse.Namespace, partition: int, end: int, printer: Printer
) -> None:
    offset: OffsetSpec = args.start
    wait_ms = FOLLOW_WAIT_MS if args.follow else 0
    while True:
        if not args.follow and isinstance(offset, int) and offset >= end:
            return
        result = await client.fetch(
            args.topic, partition, offset=offset, limit=FETCH_LIMIT, wait_ms=wait_ms
        )
        for record in result.records:
            if not args.follow and record.offset >= end:
                return
            printer.emit(record)
        if not args.follow and not result.records:
            return
        offset = result.next_offset
