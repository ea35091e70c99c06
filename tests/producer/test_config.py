"""Simulator settings from the original's environment variables and from flags."""

from __future__ import annotations

import argparse

import pytest

from minimq.producer.config import SimulatorConfig, add_arguments


def parse(argv: list[str]) -> SimulatorConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return SimulatorConfig.from_args(parser.parse_args(argv))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "BROKER_URL", "MINIMQ_BROKER_URL", "TOPICS", "TOPIC", "INTERVAL_SECONDS",
        "PRODUCER_ID", "MINIMQ_TOKEN", "MINIMQ_PRODUCER_COUNT", "MINIMQ_PRODUCER_BUFFER",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    config = parse([])
    assert config.broker_url == "http://localhost:5000"
    assert config.topics == ["temperature", "humidity", "pressure"]
    assert config.interval == 2.0
    assert config.count == 1
    assert config.token is None
    assert config.producer_id


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "http://broker:5000")
    monkeypatch.setenv("TOPICS", "a, b ,c")
    monkeypatch.setenv("INTERVAL_SECONDS", "0.25")
    monkeypatch.setenv("PRODUCER_ID", "edge-1")
    monkeypatch.setenv("MINIMQ_TOKEN", "t0k")
    config = parse([])
    assert (config.broker_url, config.topics, config.interval) == (
        "http://broker:5000",
        ["a", "b", "c"],
        0.25,
    )
    assert (config.producer_id, config.token) == ("edge-1", "t0k")


def test_pinned_topic_and_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPIC", "pinned")
    monkeypatch.setenv("INTERVAL_SECONDS", "5")
    config = parse(["--interval", "0.5", "--count", "3", "--broker-url", "http://x:1"])
    assert config.topics == ["pinned"]
    assert (config.interval, config.count, config.broker_url) == (0.5, 3, "http://x:1")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTERVAL_SECONDS", "0"),
        ("INTERVAL_SECONDS", "soon"),
        ("TOPICS", " , "),
        ("MINIMQ_PRODUCER_COUNT", "0"),
        ("MINIMQ_PRODUCER_BUFFER", "lots"),
        ("BROKER_URL", "broker:5000"),
    ],
)
def test_bad_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        parse([])
    assert info.value.code == 2
    # The variable is named, not a flag the user never typed.
    [line] = capsys.readouterr().err.splitlines()
    assert f"error: environment variable {name}: expected " in line
