"""Records with many headers: refused at produce, and bounded in cost when already stored.

A header costs the broker about 0.7 µs to decode and serialize, a value byte
about 3 ns. Before the bound, a 64 MiB fetch of records with 90,000 headers
each held the event loop for 4.6 s, and every other request waited.

* A produce with a record over ``--max-record-headers`` (64) or
  ``--max-record-header-bytes`` (64 KiB) is refused whole, ``400
  HEADERS_TOO_LARGE``, on both ways in (the produce lane and aiohttp).
* Records stored before the bound (here: by a broker with the bound raised)
  are still served, but a fetch counts each header as 256 bytes of its
  ``max_bytes`` (``minimq.recordbatch.frames.HEADER_READ_BYTES``), so one fetch
  decodes a bounded number of them. The figures (event-loop stall seen by a
  ``/healthz`` poller) are printed with ``-s``; they are not asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from minimq.recordbatch.frames import HEADER_READ_BYTES
from tests.server.test_produce_lane import (
    Connection,
    comparable,
    connector,
    post,
    through_aiohttp,
    through_lane,
)
from tests.support.processes import BrokerProcess

TOPIC = "many-headers"
FETCH = f"/v1/topics/{TOPIC}/partitions/0/records"


@pytest.fixture
def opened() -> Iterator[list[Connection]]:
    connections: list[Connection] = []
    yield connections
    for connection in connections:
        connection.close()


def produce_body(headers: dict[str, str]) -> bytes:
    return orjson.dumps({"records": [{"value": 1, "headers": headers}]})


CASES = {
    "65 headers": ({f"h{i}": "" for i in range(65)}, 400),
    "64 headers": ({f"h{i}": "" for i in range(64)}, 200),
    "one header of 64 KiB + 1": ({"h": "x" * (64 * 1024)}, 400),
    "64 KiB of header bytes": ({"h": "x" * (64 * 1024 - 1)}, 200),
    "a non-ASCII name counts its UTF-8 bytes": ({"é": "x" * (64 * 1024 - 1)}, 400),
}


@pytest.mark.parametrize(("headers", "status"), CASES.values(), ids=CASES.keys())
def test_the_header_bound_is_the_same_on_both_paths(
    shared_broker: BrokerProcess, opened: list[Connection], headers: dict[str, str], status: int
) -> None:
    connect = connector(shared_broker.port, opened)
    # Bodies up to 64 KiB are the lane's; the larger ones go to aiohttp either way.
    request = post(f"/v1/topics/{TOPIC}-bound/records", produce_body(headers))
    by_lane = through_lane(connect, request)
    by_aiohttp = through_aiohttp(connect, request)
    assert by_lane.status == status, by_lane.body
    assert comparable(by_lane) == comparable(by_aiohttp)
    if status == 400:
        assert by_lane.json()["error"]["code"] == "HEADERS_TOO_LARGE"


def test_the_header_bound_is_configurable_and_refuses_the_whole_produce(data_dir: Path) -> None:
    args = ["--max-record-headers", "2", "--max-record-header-bytes", "10"]
    with BrokerProcess(data_dir, args) as broker, httpx.Client(base_url=broker.url) as client:
        records = [{"value": 1}, {"value": 2, "headers": {"a": "1", "b": "2", "c": "3"}}]
        refused = client.post(f"/v1/topics/{TOPIC}/records", json={"records": records})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "HEADERS_TOO_LARGE"
        assert "at most 2 headers" in refused.json()["error"]["message"]
        too_long = client.post(
            f"/v1/topics/{TOPIC}/records",
            json={"records": [{"value": 1, "headers": {"a": "x" * 10}}]},
        )
        assert too_long.json()["error"]["code"] == "HEADERS_TOO_LARGE"
        assert client.get(f"/v1/topics/{TOPIC}").status_code == 404, "nothing was stored"
        fine = {"value": 3, "headers": {"a": "1", "b": "2"}}
        assert client.post(f"/v1/topics/{TOPIC}/records", json={"records": [fine]}).is_success


STORED_HEADERS = 20_000
STORED_RECORDS = 24


def loop_stall_during(broker: BrokerProcess, fetches: int, params: dict[str, int]) -> float:
    """The longest ``/healthz`` answer time while ``fetches`` fetches run at once (seconds)."""
    stop = threading.Event()
    latencies: list[float] = []

    def poll() -> None:
        with httpx.Client(base_url=broker.url, timeout=120) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get("/healthz")
                latencies.append(time.perf_counter() - started)
                time.sleep(0.002)

    def fetch() -> None:
        with httpx.Client(base_url=broker.url, timeout=120) as client:
            assert client.get(FETCH, params=params).status_code == 200

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(0.2)
        latencies.clear()
        workers = [threading.Thread(target=fetch) for _ in range(fetches)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        time.sleep(0.1)
    finally:
        stop.set()
        poller.join()
    return max(latencies)


def test_records_stored_with_many_headers_are_fetched_at_a_bounded_cost(data_dir: Path) -> None:
    headers = {f"h{i:05d}": "" for i in range(STORED_HEADERS)}
    body = produce_body(headers)
    unbounded = ["--max-record-headers", "1000000", "--max-record-header-bytes", "100000000"]
    with BrokerProcess(data_dir, unbounded) as broker, httpx.Client(base_url=broker.url) as client:
        for _ in range(STORED_RECORDS):
            stored = client.post(
                f"/v1/topics/{TOPIC}/records",
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
            assert stored.status_code == 200, stored.text
    # Restarted with the default bound: what is stored stays readable.
    with BrokerProcess(data_dir) as broker, httpx.Client(base_url=broker.url, timeout=60) as client:
        every = {"max_bytes": 64 * 1024 * 1024, "limit": 10_000}
        answer = client.get(FETCH, params=every).json()
        served = answer["records"]
        assert served, "a fetch always serves at least one record"
        assert len(served[0]["headers"]) == STORED_HEADERS, "headers are served whole"
        # Each header counts HEADER_READ_BYTES of max_bytes: a 64 MiB fetch holds
        # at most this many of these records (plus the first, which always fits).
        cost = STORED_HEADERS * (HEADER_READ_BYTES + len("h00000"))
        assert len(served) <= every["max_bytes"] // cost + 1 < STORED_RECORDS
        assert answer["next_offset"] == len(served), "the next fetch goes on from there"
        small = client.get(FETCH, params={"max_bytes": 1024 * 1024}).json()["records"]
        assert len(small) == 1
        one = loop_stall_during(broker, 1, every)
        four = loop_stall_during(broker, 4, every)
        print(
            f"\n{STORED_RECORDS} stored records of {STORED_HEADERS} headers: a 64 MiB fetch"
            f" serves {len(served)}; longest /healthz answer during 1 fetch {one * 1000:.0f} ms,"
            f" during 4 at once {four * 1000:.0f} ms"
        )
