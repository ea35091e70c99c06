"""The simulator's shell: flags, logging, run (shared by ``minimq producer``)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from minimq.producer.config import HostMetricsConfig, SimulatorConfig, add_arguments
from minimq.producer.host_producer import run_host
from minimq.producer.simulator import run

DESCRIPTION = (
    "Simulated sensor producers, or this machine's CPU, memory, disk and network"
    " (--source host), sending JSON readings to a MiniMQ broker."
)


def run_from_args(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per HTTP request would drown the simulator's own messages.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if args.source == "host":
        return run_host(HostMetricsConfig.from_args(args))
    return run(SimulatorConfig.from_args(args))


def add_parser_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every reading")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minimq.producer", description=DESCRIPTION)
    add_parser_arguments(parser)
    return run_from_args(parser.parse_args(argv))
