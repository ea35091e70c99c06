"""``minimq produce TOPIC``: send stdin to a topic, one record per line, batched.

Input formats (``--format``):

- ``text`` (default): each non-empty line is a string value.
- ``json``: each non-empty line is a JSON value (NDJSON).
- ``record``: each non-empty line is a JSON object ``{"value": ..., "key": ...,
  "headers": {...}, "partition": N}`` (only ``value`` required).

``--key`` sets the key of every record (``record`` lines may carry their own).
Records go through a batching :class:`minimq.client.Producer`, so a stalled
broker is retried; if any record finally fails the command says how many and
exits non-zero.  A malformed line stops the command (exit 1) after the lines
before it were produced.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from minimq.cli.client_support import (
    client_from_args,
    exit_code_for,
    progress_bar,
    reports_errors,
)
from minimq.cli.options import add_client_options
from minimq.client import Producer, RecordMetadata, strict_json
from minimq.errors import InvalidRequest, MiniMQError

FORMATS = ("text", "json", "record")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "produce",
        help="send lines or NDJSON from stdin to a topic",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_client_options(parser)
    parser.add_argument("topic")
    parser.add_argument("-k", "--key", help="key of every record")
    parser.add_argument("-p", "--partition", type=int, help="partition of every record")
    parser.add_argument("-f", "--format", choices=FORMATS, default="text", help="input format")
    parser.add_argument(
        "--batch-records", type=int, default=1000, help="records per request (default 1000)"
    )
    parser.add_argument(
        "--linger-ms", type=float, default=5, help="wait this long to fill a batch (default 5)"
    )
    parser.set_defaults(handler=reports_errors(run))


def parse_line(line: str, fmt: str, number: int) -> dict[str, Any]:
    """One input line as a produce record (``value`` and optional fields)."""
    if fmt == "text":
        return {"value": line}
    try:
        # The strict rule the broker applies: no silent float for a huge
        # integer, no duplicate key quietly dropped.
        parsed = strict_json.loads(line)
    except InvalidRequest as exc:
        raise InvalidRequest(f"line {number}: invalid JSON ({exc.message})") from None
    if fmt == "json":
        return {"value": parsed}
    if not isinstance(parsed, dict) or "value" not in parsed:
        raise InvalidRequest(f"line {number}: a record needs a JSON object with a 'value'")
    return parsed


def input_records(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(sys.stdin, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        record = parse_line(line, args.format, number)
        if args.key is not None:
            record.setdefault("key", args.key)
        if args.partition is not None:
            record.setdefault("partition", args.partition)
        yield record


def run(args: argparse.Namespace) -> int:
    failures: list[MiniMQError] = []

    def collect(future: Future[RecordMetadata]) -> None:
        error = future.exception()
        if isinstance(error, MiniMQError):
            failures.append(error)

    sent = 0
    with client_from_args(args) as client:
        # Fail fast when the broker is not there at all; later outages are retried.
        client.health()
        producer = Producer(
            client, linger_ms=args.linger_ms, max_batch_records=args.batch_records, retries=5
        )
        with progress_bar(None, "rec", f"produce {args.topic}") as bar:
            try:
                for record in input_records(args):
                    if failures:
                        break
                    producer.send(
                        args.topic,
                        record["value"],
                        key=record.get("key"),
                        headers=record.get("headers"),
                        partition=record.get("partition"),
                        callback=collect,
                    )
                    sent += 1
                    bar.update()
            finally:
                # Whatever stopped the input, what was accepted is delivered first.
                producer.close(timeout=None)
    if failures:
        first = failures[0]
        print(
            f"minimq: {first.code}: {first.message} "
            f"({len(failures)} of {sent} records not produced)",
            file=sys.stderr,
        )
        return exit_code_for(first)
    print(f"produced {sent} records to {args.topic}", file=sys.stderr)
    return 0
