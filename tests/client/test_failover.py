"""Several broker URLs: the client carries on through the other broker when one is killed.

Two real broker processes stand in for two gateways; one is killed with
SIGKILL while calls are being made.  Each has its own data directory, so the
tests read both logs back and check the union: every acknowledged record
stored, where its acknowledgement says, and none twice except the one whose
request was in flight at the kill (the first broker may have stored it
before dying; the retry stored it on the other).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimq.client import AsyncClient, Client, Consumer
from minimq.errors import BrokerUnavailable, OutcomeUnknown
from tests.client.test_timeouts import SilentServer
from tests.support.broker_pair import broker_pair, read_all, same_history
from tests.support.processes import BrokerProcess, free_port

PRODUCES = 400
KILL_AFTER = 150


Pair = tuple[BrokerProcess, BrokerProcess]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with broker_pair(tmp_path) as brokers:
        yield brokers


def check_history(
    a: BrokerProcess, b: BrokerProcess, topic: str, acked: dict[int, tuple[str, int]]
) -> None:
    """Every acknowledged value is where its acknowledgement says; duplicates are bounded."""
    stored = {a.url: read_all(a.url, topic), b.url: read_all(b.url, topic)}
    where = {(url, r.offset): r.value["n"] for url, records in stored.items() for r in records}
    for n, (url, offset) in acked.items():
        assert where.get((url, offset)) == n, f"acknowledged {n} missing at {url} offset {offset}"
    copies = Counter(r.value["n"] for records in stored.values() for r in records)
    assert set(copies) == set(acked), "a record stored that was never acknowledged"
    duplicated = [n for n, count in copies.items() if count > 1]
    # Only the request in flight at the kill: a's copy is its last record.
    assert len(duplicated) <= 1, duplicated
    for n in duplicated:
        assert stored[a.url][-1].value["n"] == n


def test_keyed_produce_carries_on_through_the_other_broker_after_kill9(
    pair: Pair,
) -> None:
    a, b = pair
    with Client([a.url, b.url], timeout=5) as client:
        for broker in (a, b):
            with Client(broker.url) as direct:
                direct.create_topic("orders")
        acked: dict[int, tuple[str, int]] = {}
        killed = threading.Event()

        def kill_a_mid_stream() -> None:
            # Killed while the main thread keeps producing: a request may be in flight.
            while len(acked) < KILL_AFTER:
                threading.Event().wait(0.005)
            a.kill()
            killed.set()

        killer = threading.Thread(target=kill_a_mid_stream)
        killer.start()
        try:
            for n in range(PRODUCES):
                key = f"order-{n}"
                meta = client.produce("orders", {"n": n}, idempotency_key=key)
                # Sequential calls: the URL in use now is the one that answered.
                acked[n] = (client.base_url, meta.offset)
        finally:
            killer.join()
        assert killed.is_set()
        answered = Counter(url for url, _ in acked.values())
        assert answered[a.url] >= KILL_AFTER and answered[b.url] > 0
        # Sticky: once on b, every later call stays there.
        first_b = min(n for n, (url, _) in acked.items() if url == b.url)
        assert all(acked[n][0] == b.url for n in range(first_b, PRODUCES))
        a.start()
        check_history(a, b, "orders", acked)


def test_produce_without_a_key_is_never_resent_when_its_outcome_is_unknown(
    pair: Pair,
) -> None:
    silent = SilentServer()
    try:
        _a, b = pair
        with Client([silent.url, b.url], timeout=0.5) as client:
            with pytest.raises(OutcomeUnknown) as info:
                client.produce("unkeyed", "maybe stored")
            assert silent.url in info.value.message and "idempotency_key" in info.value.message
            assert info.value.code == "OUTCOME_UNKNOWN"
            assert silent.attempts() == 1
            # Not sent to b either; and the client moved on to b for what follows.
            assert client.base_url == b.url
            assert "unkeyed" not in [t.name for t in client.list_topics()]
            stored = client.produce("unkeyed", "sent again by the caller")
            assert stored.offset == 0
    finally:
        silent.close()


def test_a_refused_connection_fails_over_even_for_produce_without_a_key(
    pair: Pair,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    _a, b = pair
    with Client([dead, b.url], retries=0) as client:
        # Nothing was sent to the dead URL, so sending to b is safe.
        assert client.produce("refused-first", "once").offset == 0
        assert client.base_url == b.url
        assert [r.value for r in read_all(b.url, "refused-first")] == ["once"]


def test_a_long_poll_fetch_resumes_on_the_other_broker(
    pair: Pair,
) -> None:
    a, b = pair
    with Client([a.url, b.url]) as client:
        same_history([a, b], "polled", ["old-0", "old-1"])
        results: list[object] = []

        def long_poll() -> None:
            try:
                results.append(client.fetch("polled", 0, offset=2, wait_ms=30_000))
            except Exception as exc:
                results.append(exc)

        poller = threading.Thread(target=long_poll)
        poller.start()
        threading.Event().wait(1.0)  # let the poll reach a (if not, it is refused and moves on)
        a.kill()
        with Client(b.url) as direct:
            direct.produce("polled", "new-2")
        poller.join(120)
        assert not poller.is_alive()
        (page,) = results
        assert not isinstance(page, Exception), page
        assert [(r.offset, r.value) for r in page.records] == [(2, "new-2")]  # type: ignore[attr-defined]


def test_a_stream_of_one_partition_resumes_after_the_last_offset_seen(
    pair: Pair,
) -> None:
    a, b = pair
    with Client([a.url, b.url]) as client:
        same_history([a, b], "live", [f"v{n}" for n in range(50)])
        seen: list[tuple[int, str]] = []
        with contextlib.closing(
            client.stream("live", start="earliest", partition=0, timeout=60)
        ) as records:
            for record in records:
                seen.append((record.offset, record.value))
                if len(seen) == 20:
                    a.kill()
                    with Client(b.url) as direct:
                        direct.produce_batch("live", [{"value": f"v{n}"} for n in range(50, 60)])
                if len(seen) == 60:
                    break
        assert seen == [(n, f"v{n}") for n in range(60)]
        assert client.base_url == b.url


def test_a_stream_of_every_partition_resumes_without_gap_or_repeat(pair: Pair) -> None:
    a, b = pair
    with Client([a.url, b.url]) as client:
        same_history([a, b], "wide", list(range(30)), partitions=3)
        seen: list[tuple[int, int, int]] = []
        with contextlib.closing(client.stream("wide", start="earliest", timeout=60)) as records:
            for record in records:
                seen.append((record.partition, record.offset, record.value))
                if len(seen) == 15:
                    a.kill()
                    with Client(b.url) as direct:
                        direct.produce_batch(
                            "wide", [{"value": n, "partition": n % 3} for n in range(30, 42)]
                        )
                if len(seen) == 42:
                    break
        assert sorted(value for _, _, value in seen) == list(range(42))
        for partition in range(3):
            offsets = [offset for p, offset, _ in seen if p == partition]
            assert offsets == list(range(14)), (partition, offsets)


def test_a_consumer_long_poll_resumes_through_the_other_broker(
    pair: Pair,
) -> None:
    a, b = pair
    same_history([a, b], "jobs", [f"job-{n}" for n in range(5)])
    with Consumer([a.url, b.url], "workers", "jobs", auto_commit_interval_ms=None) as consumer:
        assert [r.value for r in consumer.poll(timeout_ms=5000)] == [f"job-{n}" for n in range(5)]
        consumer.commit()

        def kill_during_the_poll() -> None:
            threading.Event().wait(1.0)
            a.kill()
            with Client(b.url) as direct:
                direct.produce("jobs", "job-5")

        killer = threading.Thread(target=kill_during_the_poll)
        killer.start()
        values: list[str] = []
        try:
            # The long poll on a loses its broker; the consumer rejoins on b and goes on.
            for _ in range(20):
                values += [r.value for r in consumer.poll(timeout_ms=3000)]
                if "job-5" in values:
                    break
        finally:
            killer.join()
        assert "job-5" in values


def test_every_url_down_is_one_clear_error_naming_them_all() -> None:
    urls = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with Client(urls, retries=1, timeout=2) as client, pytest.raises(BrokerUnavailable) as info:
        client.list_topics()
    assert info.value.code == "BROKER_UNAVAILABLE"
    assert info.value.message.startswith("no broker answered")
    assert all(url in info.value.message for url in urls)


async def test_async_client_fails_over_and_names_every_url_when_all_are_down(
    pair: Pair,
) -> None:
    a, b = pair
    for broker in (a, b):
        with Client(broker.url) as direct:
            direct.create_topic("async-orders")
    acked: dict[int, tuple[str, int]] = {}
    async with AsyncClient(f"{a.url},{b.url}", timeout=5) as client:
        for n in range(200):
            if n == 80:
                # A kill between two produces: the next call meets a dead keep-alive connection.
                pending = asyncio.create_task(client.list_topics())
                a.kill()
                await pending
            meta = await client.produce("async-orders", {"n": n}, idempotency_key=f"a-{n}")
            acked[n] = (client.base_url, meta.offset)
        assert client.base_url == b.url
        b.kill()
        with pytest.raises(BrokerUnavailable) as info:
            await client.fetch("async-orders", 0)
        assert a.url in info.value.message and b.url in info.value.message
    a.start()
    b.start()
    check_history(a, b, "async-orders", acked)
