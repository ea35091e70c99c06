"""The bound on a record's headers, checked by the broker core for every transport."""

from __future__ import annotations

import pytest

from minimq.core import Broker, BrokerSettings, FetchLimits, ProduceRecord, StartPosition
from minimq.core.header_limits import HeaderLimits
from minimq.errors import HeadersTooLarge, InvalidRequest, TopicNotFound
from tests.support.memory_storage import MemoryStorage


def broker(limits: HeaderLimits) -> Broker:
    return Broker(MemoryStorage(), BrokerSettings(header_limits=limits))


def record(*headers: tuple[str, bytes]) -> ProduceRecord:
    return ProduceRecord(b"1", headers=headers)


def test_defaults_are_64_headers_and_64_kib() -> None:
    assert (HeaderLimits().max_count, HeaderLimits().max_bytes) == (64, 64 * 1024)


def test_size_counts_names_in_utf8_and_values() -> None:
    assert HeaderLimits().checked_size((("é", b"12"), ("a", b""))) == 2 + 2 + 1


async def test_too_many_headers_refuse_the_whole_produce() -> None:
    core = broker(HeaderLimits(max_count=2, max_bytes=100))
    fine = record(("a", b"1"), ("b", b"2"))
    crowded = record(("a", b"1"), ("b", b"2"), ("c", b"3"))
    with pytest.raises(HeadersTooLarge, match="at most 2 headers, not 3"):
        await core.produce("t", [fine, crowded])
    with pytest.raises(TopicNotFound):
        await core.describe_topic("t")  # refused before anything, the topic included, was made
    await core.produce("t", [fine])
    fetched = await core.fetch("t", 0, StartPosition.earliest(), FetchLimits())
    assert [r.headers for r in fetched.records] == [fine.headers]


async def test_too_many_header_bytes_refuse_the_produce() -> None:
    core = broker(HeaderLimits(max_count=10, max_bytes=4))
    await core.produce("t", [record(("ab", b"cd"))])
    with pytest.raises(HeadersTooLarge, match="at most 4 bytes, not 5"):
        await core.produce("t", [record(("ab", b"cde"))])


def test_a_huge_header_count_is_refused_without_looking_at_the_headers() -> None:
    class Untouchable(tuple[tuple[str, bytes], ...]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            raise AssertionError("the headers were walked")

    headers = Untouchable(("h", b"") for _ in range(90_000))
    with pytest.raises(HeadersTooLarge):
        HeaderLimits().checked_size(headers)


def test_headers_too_large_is_an_invalid_request() -> None:
    # A 400 for the HTTP transport, and what clients that catch InvalidRequest expect.
    assert issubclass(HeadersTooLarge, InvalidRequest)
    assert HeadersTooLarge.code == "HEADERS_TOO_LARGE"
