"""Broker URL lists: a sequence or comma-separated text, each entry checked, clear refusals."""

from __future__ import annotations

import pytest

from minimq.broker_urls import parse_broker_urls
from minimq.client import AsyncClient, Client


def test_one_url_several_urls_and_sequences() -> None:
    assert parse_broker_urls("http://a:5000") == ("http://a:5000",)
    assert parse_broker_urls("http://a:5000/, https://b:443 ") == ("http://a:5000", "https://b:443")
    assert parse_broker_urls(["http://a:1", "http://b:2,http://c:3"]) == (
        "http://a:1",
        "http://b:2",
        "http://c:3",
    )
    # A path prefix (a broker behind a reverse proxy) is kept.
    assert parse_broker_urls("http://proxy/minimq/") == ("http://proxy/minimq",)


def test_repeats_are_dropped_keeping_the_order() -> None:
    assert parse_broker_urls("http://b:2,http://a:1,http://b:2/") == ("http://b:2", "http://a:1")


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("localhost:5000", "'localhost:5000'"),
        ("http://a:1,ftp://b", "'ftp://b'"),
        ("http://a:1,,http://b:2", "''"),
        ("http://a:1,", "''"),
        ("http://a:99999", "'http://a:99999'"),
        ("http://:5000", "'http://:5000'"),
        ("http://a:1?x=1", "'http://a:1?x=1'"),
        ("", "''"),
    ],
)
def test_a_bad_entry_is_named(given: str, named: str) -> None:
    with pytest.raises(ValueError, match="expected an http:// or https:// URL") as info:
        parse_broker_urls(given)
    assert f"not {named}" in str(info.value)


def test_an_empty_sequence_or_a_non_string_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one broker URL"):
        parse_broker_urls([])
    with pytest.raises(ValueError, match="as strings"):
        parse_broker_urls(["http://a:1", 5000])  # type: ignore[list-item]


def test_clients_take_lists_and_refuse_bad_urls_before_any_io() -> None:
    with Client("http://a:1, http://b:2") as client:
        assert client.base_urls == ("http://a:1", "http://b:2")
        assert client.base_url == "http://a:1"
    assert AsyncClient(["http://a:1", "http://b:2"]).base_urls == ("http://a:1", "http://b:2")
    with pytest.raises(ValueError, match="'b:2'"):
        Client("http://a:1,b:2")
    with pytest.raises(ValueError, match="'b:2'"):
        AsyncClient("http://a:1,b:2")
