"""Simulator settings: command-line flags with the original's environment variables.

======================  ==========================  ==============================
flag                    environment                 default
======================  ==========================  ==============================
``--broker-url``        ``BROKER_URL``,             ``http://localhost:5000``;
                        ``MINIMQ_BROKER_URL``       several comma-separated URLs
                                                    fail over (``minimq.client``)
``--topics``            ``TOPICS``                  ``temperature,humidity,pressure``
``--topic``             ``TOPIC``                   none (pins every tick to it)
``--interval``          ``INTERVAL_SECONDS``        ``2`` (fractions allowed)
``--producer-id``       ``PRODUCER_ID``             ``<hostname>-<pid>``
``--count``             ``MINIMQ_PRODUCER_COUNT``   ``1`` simulated producers
``--token``             ``MINIMQ_TOKEN``            none
``--buffer-records``    ``MINIMQ_PRODUCER_BUFFER``  ``10000`` readings held while
                                                    the broker is away
``--source``            ``MINIMQ_PRODUCER_SOURCE``  ``simulated`` sensors, or
                                                    ``host`` metrics
======================  ==========================  ==============================

With ``--source host`` (:mod:`minimq.producer.host_metrics`), as the original's
host producers:

======================  ==========================  ==============================
flag                    environment                 default
======================  ==========================  ==============================
``--node-name``         ``NODE_NAME``               ``<hostname>``
``--metrics``           ``METRIC_TYPE``             ``cpu,mem,disk,net``
``--host-mode``         ``HOST_MODE``               off: read ``--host-proc``
``--host-proc``         ``HOST_PROC``               ``/host_proc``
``--disk-path``         ``DISK_PATH``               ``/``
======================  ==========================  ==============================
"""

from __future__ import annotations

import argparse
import os
import re
import socket
from dataclasses import dataclass

from minimq.environment import (
    InvalidEnvironment,
    env,
    http_urls,
    name_list,
    one_of,
    positive_int,
    positive_number,
    switch,
)
from minimq.producer.host_metrics import METRICS

DEFAULT_TOPICS = "temperature,humidity,pressure"
SOURCES = ("simulated", "host")
# Readings go to ``<node>-<metric>``, so a node name must make a valid topic name.
_NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,240}")


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


@dataclass(frozen=True, slots=True)
class HostMetricsConfig:
    """Settings of ``--source host``: this machine's metrics instead of simulated sensors."""

    broker_url: str
    node_name: str
    metrics: list[str]
    interval: float
    producer_id: str
    token: str | None
    buffer_records: int
    host_proc: str | None
    disk_path: str

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> HostMetricsConfig:
        return cls(
            broker_url=args.broker_url,
            node_name=args.node_name,
            metrics=args.metrics,
            interval=args.interval,
            producer_id=args.producer_id,
            token=args.token,
            buffer_records=args.buffer_records,
            host_proc=args.host_proc if args.host_mode else None,
            disk_path=args.disk_path,
        )


def node_name(text: str) -> str:
    if not _NODE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected 1-240 letters, digits, '.', '_' or '-' (it names topics), not {text!r}"
        )
    return text


def metric_list(text: str) -> list[str]:
    metrics = name_list(text)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"expected metrics among {','.join(METRICS)}, not {','.join(unknown)}"
        )
    return list(dict.fromkeys(metrics))


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
        type=http_urls,
        default=env("BROKER_URL", env("MINIMQ_BROKER_URL", "http://localhost:5000")),
        help="broker base URL, or several comma-separated to fail over between"
        " (env BROKER_URL or MINIMQ_BROKER_URL; default %(default)s)",
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
    parser.add_argument(
        "--source",
        type=one_of(*SOURCES),
        default=env("MINIMQ_PRODUCER_SOURCE", "simulated"),
        help="simulated sensors, or this machine's CPU, memory, disk and network"
        " (env MINIMQ_PRODUCER_SOURCE; default %(default)s)",
    )
    host = parser.add_argument_group("host metrics (--source host)")
    host.add_argument(
        "--node-name",
        type=node_name,
        default=env("NODE_NAME", socket.gethostname()),
        help="node the readings speak for; topics are <node>-<metric> (env NODE_NAME;"
        " default the hostname)",
    )
    host.add_argument(
        "--metrics",
        type=metric_list,
        default=env("METRIC_TYPE", ",".join(METRICS)),
        help=f"comma-separated metrics among {','.join(METRICS)} (env METRIC_TYPE; default all)",
    )
    host.add_argument(
        "--host-mode",
        action="store_true",
        default=switch(env("HOST_MODE") or "0"),
        help="read the host's /proc mounted at --host-proc, as a DaemonSet does (env HOST_MODE)",
    )
    host.add_argument(
        "--host-proc",
        default=env("HOST_PROC", "/host_proc"),
        help="where the host's /proc is mounted (env HOST_PROC; default %(default)s)",
    )
    host.add_argument(
        "--disk-path",
        default=env("DISK_PATH", "/"),
        help="filesystem whose usage is the disk metric (env DISK_PATH; default %(default)s)",
    )
