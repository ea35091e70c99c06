"""``minimq producer``: run simulated sensor producers (see :mod:`minimq.producer`)."""

from __future__ import annotations

import argparse

from minimq.producer.cli import DESCRIPTION, add_parser_arguments, run_from_args


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "producer", help="run simulated sensor producers", description=DESCRIPTION
    )
    add_parser_arguments(parser)
    parser.set_defaults(handler=run_from_args)
