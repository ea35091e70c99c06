"""Every environment variable has a rule, and the rules agree with the parsers they guard."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from minimq.core.topic_config import FsyncPolicy
from minimq.environment import RULES, fsync_policy
from minimq.errors import InvalidConfig
from tests.test_configuration_doc import LEAVES

SRC = Path(__file__).resolve().parents[2] / "src" / "minimq"
ENV_READ = re.compile(r"""\benv\(\s*["']([A-Z][A-Z0-9_]*)["']""")
ENV_IN_HELP = re.compile(r"\benv ([A-Z][A-Z0-9_]*)(?: or ([A-Z][A-Z0-9_]*))?")


def test_every_variable_a_command_reads_or_documents_has_a_rule() -> None:
    read = {m for f in SRC.rglob("*.py") for m in ENV_READ.findall(f.read_text())}
    documented = {
        name
        for parser in LEAVES.values()
        for action in parser._actions
        for match in ENV_IN_HELP.finditer(action.help or "")
        for name in match.groups()
        if name
    }
    assert read, "the scan found no env() calls"
    assert sorted((read | documented) - set(RULES)) == []


@pytest.mark.parametrize(
    "text",
    ["always", "never", " never ", "interval:1", "interval:3600000", "interval:3600001",
     "interval:0", "interval:", "interval:-5", "interval:1.5", "sometimes", "Always"],
)  # fmt: skip
def test_fsync_rule_matches_the_brokers_parser(text: str) -> None:
    try:
        FsyncPolicy.parse(text)
        broker_accepts = True
    except InvalidConfig:
        broker_accepts = False
    try:
        fsync_policy(text)
        rule_accepts = True
    except argparse.ArgumentTypeError:
        rule_accepts = False
    assert rule_accepts == broker_accepts
