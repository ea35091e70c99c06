"""Open files stay bounded however many topics clients create; caps on topics and partitions.

A real broker with ``--max-open-segment-files 64`` gets topics auto-created
by ``POST /produce`` (1,000 reduced, 10,000 full), one record each.  Its
descriptors (``/proc/PID/fd``) must stay within its idle count + the cache +
the test's connections, where each partition used to hold three files open
for good (1,000 topics: 3,018 descriptors).  It is then killed and restarted
under an ``RLIMIT_NOFILE`` far below three per partition, which it must
survive (it used to fail with "too many open files" at start-up), and still
serve every topic.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import random
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.reliability.conftest import scale
from tests.support.processes import BrokerProcess

CACHE = 64
CLIENTS = 8
SLACK = 16  # a worker thread's eventfd, a log rotation, an accept in flight...


def descriptors(broker: BrokerProcess) -> int:
    assert broker.process is not None
    return len(os.listdir(f"/proc/{broker.process.pid}/fd"))


@contextlib.contextmanager
def descriptor_limit(soft: int) -> Iterator[None]:
    """Lower this process's soft ``RLIMIT_NOFILE`` so that a child started now inherits it."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    mine = len(os.listdir("/proc/self/fd"))
    assert mine < soft // 2, f"the test process itself holds {mine} descriptors"
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def produce_to_new_topics(url: str, count: int) -> None:
    def work(numbers: range) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for number in numbers:
                response = client.post(
                    "/produce", json={"topic": f"topic-{number:05d}", "message": number}
                )
                assert response.status_code == 201, response.text

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        for done in pool.map(work, [range(k, count, CLIENTS) for k in range(CLIENTS)]):
            assert done is None


def test_descriptors_stay_bounded_with_thousands_of_topics(data_dir: Path) -> None:
    topics = scale(1_000, 10_000)
    broker = BrokerProcess(data_dir, ["--max-open-segment-files", str(CACHE)])
    try:
        broker.start()
        idle = descriptors(broker)
        bound = idle + CACHE + CLIENTS + SLACK
        started = time.monotonic()
        produce_to_new_topics(broker.url, topics)
        created_s = time.monotonic() - started
        after = descriptors(broker)
        print(
            f"\n{topics} topics: {idle} descriptors idle, {after} after creating them "
            f"({created_s:.1f} s), bound {bound}"
        )
        assert after <= bound, f"{after} descriptors for {topics} topics (bound {bound})"

        broker.kill()
        # Three descriptors per partition would be 3 x topics: far beyond this.
        with descriptor_limit(idle + CACHE + 48):
            started = time.monotonic()
            broker.start(timeout=scale(60, 600))
        print(f"restart after kill -9 under RLIMIT_NOFILE {idle + CACHE + 48}: "
              f"{time.monotonic() - started:.1f} s, {descriptors(broker)} descriptors")  # fmt: skip
        with httpx.Client(base_url=broker.url, timeout=30) as client:
            for number in random.Random(7).sample(range(topics), 100):
                response = client.get(
                    f"/v1/topics/topic-{number:05d}/partitions/0/records", params={"offset": 0}
                )
                assert response.status_code == 200, response.text
                assert [r["value"] for r in response.json()["records"]] == [number]
        assert descriptors(broker) <= bound
    finally:
        broker.kill()


def test_topic_and_partition_caps_are_409_with_their_codes(data_dir: Path) -> None:
    limits = ["--max-topics", "3", "--max-partitions", "4"]
    with BrokerProcess(data_dir, limits) as broker, httpx.Client(base_url=broker.url) as client:
        for name, partitions in (("a", 1), ("b", 2)):
            created = client.post("/v1/topics", json={"name": name, "partitions": partitions})
            assert created.status_code == 201, created.text
        wide = client.post("/v1/topics", json={"name": "c", "partitions": 2})
        assert wide.status_code == 409, wide.text
        assert wide.json()["error"]["code"] == "PARTITION_LIMIT_REACHED"
        assert client.post("/v1/topics", json={"name": "c"}).status_code == 201

        # Auto-creation is refused the same way, on the produce lane and through aiohttp.
        for response in (
            client.post("/produce", json={"topic": "d", "message": 1}),
            client.post("/v1/topics/d/records", json={"records": [{"value": 1}]}),
            client.post("/v1/topics", json={"name": "d"}),
        ):
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "TOPIC_LIMIT_REACHED"
        assert [t["name"] for t in client.get("/v1/topics").json()["topics"]] == [
            "a",
            "b",
            "c",
        ]
        assert client.delete("/v1/topics/a").status_code == 204
        assert client.post("/produce", json={"topic": "d", "message": 1}).status_code == 201
