"""Simulator settings: command-line flags with the original's environment variables.

======================  ==========================  ==============================
flag                    environment                 default
======================  ==========================  ==============================
``--broker-url``        ``BROKER_URL``,             ``http://localhost:5000``
                        ``MINIMQ_BROKER_URL``
``--topics``            ``TOPICS``                  ``temperature,humidity,pressure``
``--topic``             ``TOPIC``                   none (pins every tick to it)
``--interval``          ``INTERVAL_SECONDS``        ``2`` (fractions allowed)
``--producer-id``       ``PRODUCER_ID``             ``<hostname>-<pid>``
``--count``             ``MINIMQ_PRODUCER_COUNT``   ``1`` simulated producers
``--token``             ``MINIMQ_TOKEN``            none
``--buffer-records``    ``MINIMQ_PRODUCER_BUFFER``  ``10000`` readings held while
                                                    the broker is away
======================  ==========================  ==============================
"""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass

from minimq.environment import (
    InvalidEnvironment,
    env,
    http_url,
    name_list,
    positive_int,
    positive_number,
)

DEFAULT_TOPICS = "temperature,humidity,pressure"


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    broker_url: str
    topics: list[str]
    interval: float
    producer_id: str
    count: int
    token: str | None
    buffer_records: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SimulatorConfig:
        return cls(
            broker_url=args.broker_url,
            topics=[args.topic] if args.topic else args.topics,
            interval=args.interval,
            producer_id=args.producer_id,
            count=args.count,
            token=args.token,
            buffer_records=args.buffer_records,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's flags; string defaults from the environment go through ``type``.

    A variable that breaks its rule ends the program here, as argparse would
    for a bad flag: ``python -m minimq.producer`` has no other shell to say so.
    """
    try:
        _add_arguments(parser)
    except InvalidEnvironment as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker-url",
        type=http_url,
        default=env("BROKER_URL", env("MINIMQ_BROKER_URL", "http://localhost:5000")),
        help="broker base URL (env BROKER_URL or MINIMQ_BROKER_URL; default %(default)s)",
    )
    parser.add_argument(
        "--topics",
        type=name_list,
        default=env("TOPICS", DEFAULT_TOPICS),
        help="comma-separated topics to pick from at random (env TOPICS; default %(default)s)",
    )
    parser.add_argument(
        "--topic",
        default=env("TOPIC"),
        help="send every reading to this one topic (env TOPIC)",
    )
    parser.add_argument(
        "--interval",
        type=positive_number,
        default=env("INTERVAL_SECONDS", "2"),
        help="seconds between readings of each producer (env INTERVAL_SECONDS; default 2)",
    )
    parser.add_argument(
        "--producer-id",
        default=env("PRODUCER_ID", f"{socket.gethostname()}-{os.getpid()}"),
        help="producer id in every reading (env PRODUCER_ID; default <hostname>-<pid>)",
    )
    parser.add_argument(
        "--count",
        type=positive_int,
        default=env("MINIMQ_PRODUCER_COUNT", "1"),
        help="simulated producers in this process (env MINIMQ_PRODUCER_COUNT; default 1)",
    )
    parser.add_argument(
        "--token",
        default=env("MINIMQ_TOKEN"),
        help="bearer token for the broker (env MINIMQ_TOKEN)",
    )
    parser.add_argument(
        "--buffer-records",
        type=positive_int,
        default=env("MINIMQ_PRODUCER_BUFFER", "10000"),
        help="readings kept while the broker is unreachable (env MINIMQ_PRODUCER_BUFFER)",
    )
