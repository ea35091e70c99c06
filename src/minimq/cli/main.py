"""Entry point of the ``minimq`` console script.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds its parser and sets ``handler`` (a callable taking the parsed
namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from minimq import __version__
from minimq.environment import InvalidEnvironment

# Command name -> the module that registers it. Only the named command's module
# is imported when one is given, so `minimq broker` starts without loading the
# web UI or the client library.
COMMAND_MODULES = {
    "broker": "minimq.cli.broker_command",
    "up": "minimq.cli.up_command",
    "ui": "minimq.cli.ui_command",
    "producer": "minimq.cli.producer_command",
    "topics": "minimq.cli.topics_command",
    "produce": "minimq.cli.produce_command",
    "consume": "minimq.cli.consume_command",
    "groups": "minimq.cli.groups_command",
    "bench": "minimq.cli.bench_command",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone when it is given."""
    parser = argparse.ArgumentParser(
        prog="minimq",
        description="MiniMQ: a lightweight, durable pub/sub log with an HTTP/JSON API.",
    )
    parser.add_argument("--version", action="version", version=f"minimq {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMAND_MODULES.items():
        if command is None or name == command:
            importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    named = arguments[0] if arguments and arguments[0] in COMMAND_MODULES else None
    try:
        parser = build_parser(named)
    except InvalidEnvironment as exc:
        # Variables are read while the parsers are built, before argparse could
        # report anything; the same one line and status as for a bad flag.
        prog = f"minimq {named}" if named else "minimq"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(arguments)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
