"""A broker frozen by SIGSTOP for 5 s: clients time out cleanly and carry on afterwards."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from bench.reliability.ledger import Ledger, read_topic
from bench.reliability.workload import Workload

from minimq.client import Client
from minimq.errors import BrokerUnavailable
from tests.support.processes import BrokerProcess

FROZEN_S = 5.0
CLIENT_TIMEOUT_S = 1.0


def test_clients_time_out_cleanly_while_the_broker_is_stopped(data_dir: Path) -> None:
    with BrokerProcess(data_dir) as broker:
        assert broker.process is not None
        httpx.post(f"{broker.url}/v1/topics", json={"name": "frozen", "partitions": 2})
        ledger = Ledger()
        workload = Workload(
            broker.url, "frozen", ledger, group="frozen-group", timeout=CLIENT_TIMEOUT_S
        ).start()
        client = Client(broker.url, timeout=CLIENT_TIMEOUT_S, retries=0)
        try:
            time.sleep(1)
            os.kill(broker.process.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                ledger.sent(["during-stop"])
                with pytest.raises(BrokerUnavailable):
                    client.produce("frozen", {"id": "during-stop"})
                ledger.unknown(["during-stop"])  # it may still be stored after SIGCONT
                waited = time.monotonic() - started
                time.sleep(max(FROZEN_S - (time.monotonic() - started), 0))
            finally:
                os.kill(broker.process.pid, signal.SIGCONT)
            unknown_during_stop = workload.stats.produce_unknown
            ledger.sent(["after-stop"])
            after = client.produce("frozen", {"id": "after-stop"})
            ledger.acknowledged(["after-stop"], [(after.partition, after.offset)])
            time.sleep(1)
            workload.stop_producing()
            workload.drain(partitions=2)
        finally:
            workload.finish()
            client.close()
        verdict = ledger.check_log(read_topic(broker.url, "frozen"))
    print(f"client gave up after {waited:.2f}s; {verdict.summary()}")
    assert waited < CLIENT_TIMEOUT_S + 2
    assert unknown_during_stop >= 1, "the workload's requests timed out too"
    assert verdict.ok, verdict.summary()
    assert workload.stats.delivered >= ledger.acknowledged_ids()
