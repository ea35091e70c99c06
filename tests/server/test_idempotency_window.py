"""The idempotent-produce window of a real broker: its bounds, and what it does not survive.

The window is in memory (``minimq/core/idempotency.py``): it is bounded in
keys per topic, in keys in all and in time, each settable by flag, and a
broker restart empties it.  These tests hold the broker to each of those claims.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.processes import BrokerProcess


def produce(client: httpx.Client, topic: str, key: str, value: object = 1) -> int:
    answer = client.post(
        f"/v1/topics/{topic}/records",
        json={"records": [{"value": value}]},
        headers={"Idempotency-Key": key},
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["offsets"][0]["offset"])


def test_the_window_is_bounded_in_keys_per_topic_in_all_and_in_time(data_dir: Path) -> None:
    flags = [
        "--idempotency-keys-per-topic",
        "2",
        "--idempotency-max-keys",
        "3",
        "--idempotency-window-ms",
        "400",
    ]
    with BrokerProcess(data_dir, flags) as broker, httpx.Client(base_url=broker.url) as client:
        assert [produce(client, "t", key) for key in "abc"] == [0, 1, 2]
        assert produce(client, "t", "c") == 2, "a key in the window is answered from it"
        assert produce(client, "t", "a") == 3, "the oldest of 3 keys (2 per topic) was forgotten"
        # Broker-wide: 3 keys at most, the oldest of all goes first.
        assert produce(client, "u", "x") == 0
        assert produce(client, "u", "y") == 1
        assert produce(client, "t", "c") == 4, "'c' was the oldest key of all"
        time.sleep(1.0)  # past the 400 ms window
        assert produce(client, "u", "y") == 2, "a key older than the window was forgotten"


def test_the_window_does_not_survive_a_restart(data_dir: Path) -> None:
    """As documented: a retry sent after a restart is stored again."""
    with BrokerProcess(data_dir) as broker:
        with httpx.Client(base_url=broker.url) as client:
            assert produce(client, "t", "before-restart") == 0
            assert produce(client, "t", "before-restart") == 0
        broker.restart()
        with httpx.Client(base_url=broker.url) as client:
            assert produce(client, "t", "before-restart") == 1
