"""Shared command-line options: every setting is a flag and a ``MINIMQ_*`` variable."""

from __future__ import annotations

import argparse

from minimq.environment import env, http_urls


def add_broker_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker-url",
        type=http_urls,
        default=env("MINIMQ_BROKER_URL", "http://localhost:5000"),
        help="broker base URL, or several comma-separated to fail over between"
        " (env MINIMQ_BROKER_URL; default %(default)s)",
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
