"""The simulator as a real process against a real broker: readings arrive, survive a
broker restart, and the process stops within 2 s of SIGTERM/SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from minimq.client import Client, Record
from minimq.errors import TopicNotFound
from tests.support.processes import BrokerProcess, free_port

STOPPED = re.compile(r"stopped: (\d+) readings taken, (\d+) delivered")


class Simulator:
    """``python -m <module> ...`` with its log in a file."""

    def __init__(self, log_path: Path, argv: Sequence[str], env: dict[str, str]) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> float:
        """Send ``sig``; the seconds until the process exited (fails after 10 s)."""
        started = time.monotonic()
        self.process.send_signal(sig)
        assert self.process.wait(10) == 0, self.log()
        return time.monotonic() - started

    def taken_and_delivered(self) -> tuple[int, int]:
        match = STOPPED.search(self.log())
        assert match, self.log()
        return int(match.group(1)), int(match.group(2))


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[list[Simulator]]:
    started: list[Simulator] = []
    yield started
    for simulator in started:
        if simulator.process.poll() is None:
            simulator.process.kill()
            simulator.process.wait()


def start(
    simulators: list[Simulator], tmp_path: Path, argv: Sequence[str], **env: str
) -> Simulator:
    simulator = Simulator(tmp_path / f"sim-{len(simulators)}.log", argv, env)
    simulators.append(simulator)
    return simulator


def readings(client: Client, topics: Sequence[str]) -> list[Record]:
    records: list[Record] = []
    for topic in topics:
        try:
            info = client.describe_topic(topic)
        except TopicNotFound:
            continue
        for partition in info.partition_info:
            offset = partition.start_offset
            while offset < partition.end_offset:
                page = client.fetch(topic, partition.partition, offset=offset, limit=1000)
                records.extend(page.records)
                offset = page.next_offset
    return records


def seqs_by_producer(records: list[Record]) -> dict[str, set[int]]:
    seqs: dict[str, set[int]] = defaultdict(set)
    for record in records:
        value: dict[str, Any] = record.value
        seqs[value["producer_id"]].add(value["seq"])
    return seqs


def wait_until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_environment_configured_producers_send_readings(
    broker: BrokerProcess, tmp_path: Path, simulators: list[Simulator]
) -> None:
    simulator = start(
        simulators,
        tmp_path,
        ["minimq", "producer", "--count", "3"],
        BROKER_URL=broker.url,
        TOPICS="temperature,humidity,pressure",
        INTERVAL_SECONDS="0.05",
        PRODUCER_ID="edge",
    )
    with Client(broker.url) as client:
        topics = ["temperature", "humidity", "pressure"]
        wait_until(lambda: len(readings(client, topics)) >= 60)
        assert simulator.stop(signal.SIGINT) < 2.0
        records = readings(client, topics)
    taken, delivered = simulator.taken_and_delivered()
    assert taken == delivered == len(records)
    assert set(seqs_by_producer(records)) == {"edge-1", "edge-2", "edge-3"}
    for record in records:
        assert record.key == record.value["sensor_id"]
        assert record.value["sensor_id"].startswith(record.topic + "-")
        assert (
            record.value["unit"]
            == {"temperature": "C", "humidity": "%", "pressure": "hPa"}[record.topic]
        )


def test_pinned_topic(broker: BrokerProcess, tmp_path: Path, simulators: list[Simulator]) -> None:
    simulator = start(
        simulators,
        tmp_path,
        ["minimq.producer", "--broker-url", broker.url, "--interval", "0.05"],
        TOPIC="vibration",
    )
    with Client(broker.url) as client:
        wait_until(lambda: len(readings(client, ["vibration"])) >= 5)
        simulator.stop()
        assert [t.name for t in client.list_topics()] == ["vibration"]
        assert {r.value["unit"] for r in readings(client, ["vibration"])} == {"units"}


def test_every_reading_arrives_across_a_broker_restart(
    broker: BrokerProcess, tmp_path: Path, simulators: list[Simulator]
) -> None:
    topics = ["temperature", "humidity"]
    simulator = start(
        simulators,
        tmp_path,
        ["minimq.producer", "--broker-url", broker.url, "--interval", "0.02", "--count", "2",
         "--topics", ",".join(topics), "--producer-id", "restart"],
    )  # fmt: skip
    with Client(broker.url) as client:
        wait_until(lambda: len(readings(client, topics)) >= 20)
    broker.stop()
    time.sleep(2.0)  # readings keep being taken while the broker is away
    broker.start()
    with Client(broker.url) as client:
        before = len(readings(client, topics))
        wait_until(lambda: len(readings(client, topics)) >= before + 50)
        assert simulator.stop() < 2.0
        records = readings(client, topics)
    taken, delivered = simulator.taken_and_delivered()
    assert taken == delivered
    seqs = seqs_by_producer(records)
    assert sum(len(s) for s in seqs.values()) == taken
    for producer_seqs in seqs.values():
        assert producer_seqs == set(range(1, max(producer_seqs) + 1)), "a reading was lost"
    log = simulator.log()
    assert log.count("cannot deliver to the broker") == 1, log
    assert log.count("reachable again") == 1, log


def test_stops_within_two_seconds_while_the_broker_is_down(
    tmp_path: Path, simulators: list[Simulator]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    simulator = start(
        simulators, tmp_path, ["minimq.producer", "--broker-url", url, "--interval", "0.05"]
    )
    wait_until(lambda: "cannot deliver to the broker" in simulator.log())
    assert simulator.stop() < 2.0
    taken, delivered = simulator.taken_and_delivered()
    assert taken > 0 and delivered == 0
    assert f"{taken} readings could not be delivered" in simulator.log()
