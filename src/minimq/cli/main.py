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

COMMAND_MODULES = (
    "minimq.cli.broker_command",
    "minimq.cli.up_command",
    "minimq.cli.ui_command",
    "minimq.cli.producer_command",
    "minimq.cli.topics_command",
    "minimq.cli.produce_command",
    "minimq.cli.consume_command",
    "minimq.cli.groups_command",
    "minimq.cli.bench_command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minimq",
        description="MiniMQ: a lightweight, durable pub/sub log with an HTTP/JSON API.",
    )
    parser.add_argument("--version", action="version", version=f"minimq {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
