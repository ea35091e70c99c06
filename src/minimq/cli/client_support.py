"""What the client commands (topics, produce, consume, groups) share: a client from
the parsed flags, error reporting with exit codes, progress bars, table and JSON output.

Kept apart from :mod:`minimq.cli.options` so that the broker command does not
import the client library.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from tqdm import tqdm

from minimq.cli.options import add_client_options
from minimq.client import Client
from minimq.errors import BrokerUnavailable, MiniMQError, NotFound, Unauthorized

# Exit codes of the client commands (documented in docs/cli.md). 2 is argparse's
# own code for a bad flag; 130 is set by main() for Ctrl-C.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNAVAILABLE = 4
EXIT_UNAUTHORIZED = 5


def client_from_args(args: argparse.Namespace) -> Client:
    return Client(args.broker_url, token=args.token)


def exit_code_for(error: MiniMQError) -> int:
    if isinstance(error, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, BrokerUnavailable):
        return EXIT_UNAVAILABLE
    if isinstance(error, Unauthorized):
        return EXIT_UNAUTHORIZED
    return EXIT_ERROR


def reports_errors(
    handler: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Wrap a command handler: broker errors become ``minimq: CODE: message`` and an exit code.

    A closed stdout (``minimq consume t | head``) ends the command quietly, like
    ``cat`` does.
    """

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except MiniMQError as error:
            print(f"minimq: {error.code}: {error.message}", file=sys.stderr)
            return exit_code_for(error)
        except BrokenPipeError:
            # Python would complain again when flushing stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK

    return run


def progress_bar(total: int | None, unit: str, description: str) -> tqdm[Any]:
    """A progress bar on stderr, shown only when stdout is a terminal."""
    return tqdm(
        total=total,
        unit=unit,
        desc=description,
        disable=not sys.stdout.isatty(),
        leave=False,
        dynamic_ncols=True,
    )


def print_json(value: Any) -> None:
    """``value`` as one line of JSON on stdout (dataclasses included)."""
    print(orjson.dumps(value).decode())


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns separated by two spaces, like ``kubectl get``."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def add_table_command_options(parser: argparse.ArgumentParser) -> None:
    """``--broker-url``, ``--token`` and ``--json``, for commands that print a table."""
    add_client_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
