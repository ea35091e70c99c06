"""A group fetch whose answer is lost must not make the consumer skip records."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from minimq.client import Client, Consumer
from minimq.errors import BrokerUnavailable
from tests.support.processes import BrokerProcess


def test_a_poll_that_timed_out_skips_nothing(data_dir: Path) -> None:
    with BrokerProcess(data_dir) as broker, Client(broker.url, timeout=1.0, retries=0) as client:
        assert broker.process is not None
        for n in range(30):
            client.produce("lost-answer", {"n": n})
        consumer = Consumer(
            client, "g", "lost-answer", max_poll_records=10, auto_commit_interval_ms=None
        )
        seen = [record.value["n"] for record in consumer.poll(timeout_ms=0)]
        consumer.commit()
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(BrokerUnavailable):
                consumer.poll(timeout_ms=0)  # the broker serves it later; nobody reads the answer
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        time.sleep(0.5)
        for _ in range(5):
            seen += [record.value["n"] for record in consumer.poll(timeout_ms=0)]
            consumer.commit()
        consumer.close()
    assert sorted(set(seen)) == list(range(30)), seen
