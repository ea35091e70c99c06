"""Settings from environment variables, shared by every command-line entry point.

A variable is read while a command builds its parser (its value becomes the
flag's default), before argparse checks anything, so a bad value used to
surface as a traceback from ``int()``, or as an error about a flag the user
never typed. Every variable therefore has a rule in :data:`RULES`, and
:func:`env` checks a set value against it first: a broken one raises
:class:`InvalidEnvironment`, naming the variable and what it expects, and the
entry points print that as one line and exit with status 2, as argparse does
for a bad flag. Only the variables a command reads are checked, and a set one
must be valid even when its flag is given too: a broken environment is
reported, not hidden until the flag is dropped.

The rules are argparse ``type=`` functions, so a flag can accept exactly what
its variable does. ``tests/cli/test_environment_rules.py`` fails when a variable
that a command reads or documents has no rule here.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable

from minimq.broker_urls import parse_broker_urls


class InvalidEnvironment(Exception):
    """An environment variable holds a value its setting cannot use."""


def env(name: str, default: str | None = None) -> str | None:
    """The value of environment variable ``name``, or ``default`` when unset or empty.

    A set value has passed its rule in :data:`RULES`, so the caller may
    convert it with a plain ``int()``; :class:`InvalidEnvironment` otherwise.
    """
    value = os.environ.get(name)
    if not value:
        return default
    rule = RULES.get(name)
    if rule is not None:
        try:
            rule(value)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise InvalidEnvironment(f"environment variable {name}: {exc}") from None
    return value


def positive_int(text: str) -> int:
    return _integer(text, "a positive integer", minimum=1)


def non_negative_int(text: str) -> int:
    return _integer(text, "an integer of 0 or more", minimum=0)


def port(text: str) -> int:
    return _integer(text, "a TCP port from 1 to 65535", minimum=1, maximum=65535)


def port_or_off(text: str) -> int:
    """A TCP port, or 0 for a listener that is turned off."""
    return _integer(text, "a TCP port from 1 to 65535, or 0 for off", minimum=0, maximum=65535)


def _integer(text: str, expected: str, *, minimum: int, maximum: int | None = None) -> int:
    refusal = argparse.ArgumentTypeError(f"expected {expected}, not {text!r}")
    try:
        value = int(text)
    except ValueError:
        raise refusal from None
    if value < minimum or (maximum is not None and value > maximum):
        raise refusal
    return value


def positive_number(text: str) -> float:
    """A finite number above 0 (seconds, mostly: ``inf`` would mean never)."""
    refusal = argparse.ArgumentTypeError(f"expected a number greater than 0, not {text!r}")
    try:
        value = float(text)
    except ValueError:
        raise refusal from None
    if not (math.isfinite(value) and value > 0):
        raise refusal
    return value


def switch(text: str) -> bool:
    """On: 1, true, yes or on, in any case. Off: 0 or false.

    ``minimq broker`` reads every other word as on, so "no" or "False" are
    refused here rather than silently switching the setting on.
    """
    if text in ("0", "false"):
        return False
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    raise argparse.ArgumentTypeError(
        f"expected 1, true, yes or on, or else 0 or false, not {text!r}"
    )


def one_of(*choices: str) -> Callable[[str], str]:
    """A parser of one of ``choices``, in any case, returned as written in ``choices``."""
    by_folded = {choice.casefold(): choice for choice in choices}

    def parse(text: str) -> str:
        try:
            return by_folded[text.casefold()]
        except KeyError:
            raise argparse.ArgumentTypeError(
                f"expected one of {', '.join(choices)}, not {text!r}"
            ) from None

    return parse


def http_urls(text: str) -> str:
    """One or more ``http://`` or ``https://`` broker URLs, comma-separated; returned as given.

    ``localhost:5000`` is not one (no scheme), nor is an empty entry.

    Kept as text: every client takes that form, and splits it the same way
    (:func:`minimq.broker_urls.parse_broker_urls`).
    """
    try:
        parse_broker_urls(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def name_list(text: str) -> list[str]:
    """Comma-separated names, blanks around them dropped; at least one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated names (at least one), not {text!r}"
        )
    return names


_FSYNC_INTERVAL = re.compile(r"interval:([0-9]+)")
_MAX_FSYNC_INTERVAL_MS = 3_600_000


def fsync_policy(text: str) -> str:
    """``always``, ``never`` or ``interval:<ms>`` up to an hour.

    The broker's own parser (``FsyncPolicy.parse``) lives in the broker core, which the
    producer, a reader of this module, may not import; a test keeps the two equal.
    """
    policy = text.strip()
    interval = _FSYNC_INTERVAL.fullmatch(policy)
    if policy in ("always", "never") or (
        interval is not None and 0 < int(interval.group(1)) <= _MAX_FSYNC_INTERVAL_MS
    ):
        return policy
    raise argparse.ArgumentTypeError(
        f"expected always, never or interval:<ms> (1 to {_MAX_FSYNC_INTERVAL_MS}), not {text!r}"
    )


# Every variable a command reads, and the rule a set value must pass; ``str``
# is any text (paths, hosts, names, secrets).
RULES: dict[str, Callable[[str], object]] = {
    "BROKER_URL": http_urls,
    "DISK_PATH": str,
    "HOST_MODE": switch,
    "HOST_PROC": str,
    "INTERVAL_SECONDS": positive_number,
    "MINIMQ_ADVERTISED_URL": str,
    "MINIMQ_BACKEND": str,
    "MINIMQ_BROKER_URL": http_urls,
    "MINIMQ_CLUSTER": switch,
    "MINIMQ_DATA_DIR": str,
    "MINIMQ_DEFAULT_PARTITIONS": positive_int,
    "MINIMQ_FSYNC": fsync_policy,
    "MINIMQ_GATEWAYS": positive_int,
    "MINIMQ_GROUP_LEASE_MS": positive_int,
    "MINIMQ_HEADER_TIMEOUT": positive_number,
    "MINIMQ_HOST": str,
    "MINIMQ_IDEMPOTENCY_KEYS_PER_TOPIC": positive_int,
    "MINIMQ_IDEMPOTENCY_MAX_KEYS": positive_int,
    "MINIMQ_IDEMPOTENCY_WINDOW_MS": positive_int,
    "MINIMQ_KAFKA_ADVERTISED_HOST": str,
    "MINIMQ_KAFKA_ADVERTISED_PORT": port,
    "MINIMQ_KAFKA_AUTO_CREATE_TOPICS": switch,
    "MINIMQ_KAFKA_MAX_REQUEST_BYTES": positive_int,
    "MINIMQ_KAFKA_PORT": port_or_off,
    "MINIMQ_LOG_LEVEL": one_of("DEBUG", "INFO", "WARNING", "ERROR"),
    "MINIMQ_MAX_BODY_BYTES": positive_int,
    "MINIMQ_MAX_CONNECTIONS": positive_int,
    "MINIMQ_MAX_CONNECTIONS_PER_ADDRESS": positive_int,
    "MINIMQ_MAX_OPEN_SEGMENT_FILES": positive_int,
    "MINIMQ_MAX_PARTITIONS": positive_int,
    "MINIMQ_MAX_RECORD_BYTES": positive_int,
    "MINIMQ_MAX_RECORD_HEADER_BYTES": positive_int,
    "MINIMQ_MAX_RECORD_HEADERS": positive_int,
    "MINIMQ_MAX_TOPICS": positive_int,
    "MINIMQ_MESSAGE_TIMESTAMP_AFTER_MAX_MS": non_negative_int,
    "MINIMQ_MESSAGE_TIMESTAMP_BEFORE_MAX_MS": non_negative_int,
    "MINIMQ_NATS_MONITOR_PORT": port,
    "MINIMQ_NATS_NAMESPACE": str,
    "MINIMQ_NATS_PORT": port,
    "MINIMQ_NATS_ROUTE_PORT": port,
    "MINIMQ_NO_AUTO_CREATE_TOPICS": switch,
    "MINIMQ_PORT": port,
    "MINIMQ_PRODUCER_BUFFER": positive_int,
    "MINIMQ_PRODUCER_COUNT": positive_int,
    "MINIMQ_PRODUCER_SOURCE": one_of("simulated", "host"),
    "MINIMQ_PRODUCERS": non_negative_int,
    "MINIMQ_REPLICAS": positive_int,
    "MINIMQ_REQUEST_TIMEOUT": positive_number,
    "MINIMQ_RESERVED_CONNECTIONS": non_negative_int,
    "MINIMQ_RESPONSE_BUFFER_BYTES": positive_int,
    "MINIMQ_RETENTION_CHECK_INTERVAL": positive_number,
    "MINIMQ_SESSION_TIMEOUT_MS": positive_int,
    "MINIMQ_TOKEN": str,
    "MINIMQ_UI_HOST": str,
    "MINIMQ_UI_PASSWORD": str,
    "MINIMQ_UI_PORT": port,
    "MINIMQ_UI_SECRET_KEY": str,
    "MINIMQ_UI_SECURE_COOKIE": switch,
    "MINIMQ_WRITE_TIMEOUT": positive_number,
    "METRIC_TYPE": name_list,
    "NODE_NAME": str,
    "PRODUCER_ID": str,
    "TOPIC": str,
    "TOPICS": name_list,
}
