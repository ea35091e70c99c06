"""Two real broker processes on one data directory: the second never starts.

Deleting ``DATA_DIR/.lock`` under a running broker used to let a second one
start on the same directory; both then acknowledged offset 19 for different
messages.  The running broker also holds a lock on the directory itself,
which cannot be deleted out from under it.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import BrokerProcess


def refused_start(broker: BrokerProcess) -> str:
    """Start ``broker``, which must exit on its own; return its log."""
    with pytest.raises(RuntimeError, match="broker failed to start"):
        broker.start(timeout=30)
    return broker.log()


@pytest.mark.parametrize("lock_file", ["kept", "deleted"])
def test_a_second_broker_on_the_same_data_dir_is_refused(data_dir: Path, lock_file: str) -> None:
    first = BrokerProcess(data_dir)
    second = BrokerProcess(data_dir)
    try:
        first.start()
        with httpx.Client(base_url=first.url, timeout=30) as client:
            for number in range(19):
                assert client.post("/produce", json={"topic": "t", "message": number}).is_success
            if lock_file == "deleted":
                (data_dir / ".lock").unlink()
            log = refused_start(second)
            assert f"cannot open data directory {data_dir}" in log, log
            assert "is in use by another broker" in log, log
            assert "Traceback" not in log, log
            # The first broker owns the directory alone and goes on from offset 19.
            answer = client.post("/v1/topics/t/records", json={"records": [{"value": "mine"}]})
            assert answer.json()["offsets"][0]["offset"] == 19, answer.text
        first.stop()
        time.sleep(0.1)
        second.start()  # once the first one is gone, the directory is free again
        with httpx.Client(base_url=second.url, timeout=30) as client:
            records = client.get(
                "/v1/topics/t/partitions/0/records", params={"offset": 19, "limit": 5}
            ).json()["records"]
            assert [r["value"] for r in records] == ["mine"]
    finally:
        first.kill()
        second.kill()
