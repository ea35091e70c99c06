"""A bad environment variable is a one-line usage error naming it, for every command.

Before: ``MINIMQ_PORT=abc minimq broker --help`` died with a traceback from
``int()``; other variables were taken without a check (``MINIMQ_LOG_LEVEL``
crashed the broker later, ``MINIMQ_NO_AUTO_CREATE_TOPICS=no`` switched the
setting on) or were reported as a flag the user never typed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# The original MiniMQ's variables, which the producer still honours.
UNPREFIXED = {"BROKER_URL", "TOPICS", "TOPIC", "INTERVAL_SECONDS", "PRODUCER_ID"}


def run(
    args: list[str], variables: dict[str, str], module: str = "minimq"
) -> subprocess.CompletedProcess[str]:
    # Only the variables under test: none of the runner's own may interfere.
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("MINIMQ_") and k not in UNPREFIXED
    }
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, **variables},
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "name", "value", "expected"),
    [
        (["broker", "--help"], "MINIMQ_PORT", "abc", "a TCP port from 1 to 65535"),
        (["broker", "--help"], "MINIMQ_MAX_BODY_BYTES", "-5", "a positive integer"),
        (["broker", "--help"], "MINIMQ_REQUEST_TIMEOUT", "soon", "a number greater than 0"),
        (["broker", "--help"], "MINIMQ_LOG_LEVEL", "loud", "one of DEBUG, INFO, WARNING, ERROR"),
        (["broker", "--help"], "MINIMQ_FSYNC", "sometimes", "always, never or interval:<ms>"),
        (["broker", "--help"], "MINIMQ_NO_AUTO_CREATE_TOPICS", "no", "1, true, yes or on, or"),
        (["ui", "--help"], "MINIMQ_UI_PORT", "eighty", "a TCP port from 1 to 65535"),
        (["ui", "--help"], "BROKER_URL", "localhost:5000", "an http:// or https:// URL"),
        (["up", "--help"], "MINIMQ_PRODUCERS", "many", "an integer of 0 or more"),
        (["up", "--help"], "INTERVAL_SECONDS", "abc", "a number greater than 0"),
        (["up", "--help"], "MINIMQ_PORT", "70000", "a TCP port from 1 to 65535"),
        (["producer", "--help"], "INTERVAL_SECONDS", "-1", "a number greater than 0"),
        (["producer", "--help"], "MINIMQ_PRODUCER_COUNT", "zero", "a positive integer"),
        (["producer", "--help"], "TOPICS", " , ", "comma-separated names"),
        (["topics", "list"], "MINIMQ_BROKER_URL", "localhost:5000", "an http:// or https://"),
        (["consume", "t"], "MINIMQ_BROKER_URL", "ftp://x", "an http:// or https:// URL"),
    ],
)
def test_bad_variable_is_one_line_naming_it_with_status_2(
    args: list[str], name: str, value: str, expected: str
) -> None:
    result = run(args, {name: value})
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"minimq {args[0]}: error: environment variable {name}: ")
    assert f"expected {expected}" in line
    assert repr(value) in line


def test_python_m_minimq_producer_reports_it_the_same_way() -> None:
    result = run(["--help"], {"INTERVAL_SECONDS": "soon"}, module="minimq.producer")
    assert result.returncode == 2
    assert result.stderr == (
        "python -m minimq.producer: error: environment variable INTERVAL_SECONDS: "
        "expected a number greater than 0, not 'soon'\n"
    )


def test_good_values_are_the_defaults() -> None:
    result = run(["broker", "--help"], {"MINIMQ_PORT": "5001", "MINIMQ_LOG_LEVEL": "debug"})
    assert result.returncode == 0, result.stderr
    assert "default 5001" in result.stdout


def test_a_command_only_checks_the_variables_it_reads() -> None:
    result = run(["topics", "list", "--help"], {"MINIMQ_PORT": "abc"})
    assert result.returncode == 0, result.stderr


def test_a_flag_accepts_what_its_variable_does() -> None:
    result = run(["topics", "list", "--broker-url", "localhost:5000"], {})
    assert result.returncode == 2
    assert "argument --broker-url: expected an http:// or https:// URL" in result.stderr
