"""Shared command-line options: every setting is a flag and a ``MINIMQ_*`` variable."""

from __future__ import annotations

import argparse
import os


def env(name: str, default: str | None = None) -> str | None:
    """The value of environment variable ``name``, or ``default`` when unset or empty."""
    value = os.environ.get(name)
    return value if value else default


def add_broker_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker-url",
        default=env("MINIMQ_BROKER_URL", "http://localhost:5000"),
        help="broker base URL (env MINIMQ_BROKER_URL; default %(default)s)",
    )


def add_token_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token",
        default=env("MINIMQ_TOKEN"),
        help="bearer token for the broker (env MINIMQ_TOKEN)",
    )


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """``--broker-url`` and ``--token``, for every command that talks to a broker."""
    add_broker_url_option(parser)
    add_token_option(parser)
