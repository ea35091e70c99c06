"""docs/configuration.md lists every flag and environment variable of every command."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimq.cli.main import build_parser

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
ENV_IN_HELP = re.compile(r"\(env ([A-Z][A-Z0-9_]*)(?: or ([A-Z][A-Z0-9_]*))?")


def commands(
    parser: argparse.ArgumentParser, prefix: str = "minimq"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every leaf command, e.g. ``("minimq topics create", parser)``."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield prefix, parser
        return
    for name, child in subparsers[0].choices.items():
        yield from commands(child, f"{prefix} {name}")


def documented(command: str, parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        yield from action.option_strings
        for match in ENV_IN_HELP.finditer(action.help or ""):
            yield from (name for name in match.groups() if name)


LEAVES = dict(commands(build_parser()))


@pytest.mark.parametrize("command", sorted(LEAVES))
def test_every_flag_and_variable_is_in_the_configuration_doc(command: str) -> None:
    text = DOC.read_text()
    missing = [name for name in documented(command, LEAVES[command]) if f"`{name}`" not in text]
    assert missing == [], f"{command}: not in docs/configuration.md"


def test_every_command_has_a_heading_or_is_a_client_command() -> None:
    headings = re.findall(r"^#+ `(minimq [a-z ]+?)[ `]", DOC.read_text(), flags=re.MULTILINE)
    client = re.search(r"^## Client commands: (.*)$", DOC.read_text(), flags=re.MULTILINE)
    assert client is not None
    for command in LEAVES:
        top = " ".join(command.split()[:2])
        assert top in headings or f"`{command.split()[1]}`" in client.group(1), command
