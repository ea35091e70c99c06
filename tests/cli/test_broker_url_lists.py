"""``--broker-url`` / ``MINIMQ_BROKER_URL`` with several URLs: the commands fail over."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from minimq.client import Client
from tests.cli.test_client_commands import minimq, ok
from tests.support.broker_pair import broker_pair, read_all
from tests.support.processes import BrokerProcess, free_port


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, BrokerProcess]]:
    with broker_pair(tmp_path_factory.mktemp("pair")) as brokers:
        yield brokers


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_commands_go_on_to_the_next_url(pair: tuple[BrokerProcess, BrokerProcess]) -> None:
    _a, b = pair
    urls = f"{dead_url()},{b.url}"
    ok(minimq("topics", "create", "listed", "--broker-url", urls))
    assert "listed" in ok(minimq("topics", "list", "--broker-url", urls))
    ok(minimq("produce", "listed", "--broker-url", urls, stdin="one\ntwo\n"))
    assert [r.value for r in read_all(b.url, "listed")] == ["one", "two"]
    consumed = ok(
        minimq("consume", "listed", "--from", "earliest", "-c", "2", "--broker-url", urls)
    )
    assert consumed.splitlines() == ["one", "two"]


def test_the_environment_carries_several_urls(pair: tuple[BrokerProcess, BrokerProcess]) -> None:
    a, _b = pair
    with Client(a.url) as client:
        client.create_topic("from-env")
    listing = minimq("topics", "list", env={"MINIMQ_BROKER_URL": f"{dead_url()}, {a.url}"})
    assert "from-env" in ok(listing)


def test_every_url_down_names_them_all_with_exit_code_4() -> None:
    urls = [dead_url(), dead_url()]
    down = minimq("topics", "list", "--broker-url", ",".join(urls))
    assert down.returncode == 4
    assert down.stderr.startswith("minimq: BROKER_UNAVAILABLE: no broker answered")
    assert all(url in down.stderr for url in urls)


@pytest.mark.parametrize("command", [["topics", "list"], ["ui"], ["producer"]])
def test_a_bad_url_in_the_list_is_named(command: list[str]) -> None:
    # --help last: the bad value is refused before help would be printed.
    flag = minimq(*command, "--broker-url", "http://a:5000,b:5000", "--help")
    assert flag.returncode == 2
    assert "expected an http:// or https:// URL" in flag.stderr and "'b:5000'" in flag.stderr
    variable = "BROKER_URL" if command[0] != "topics" else "MINIMQ_BROKER_URL"
    env = minimq(*command, "--help", env={variable: "http://a:5000,,http://b:5000"})
    assert env.returncode == 2
    assert f"environment variable {variable}" in env.stderr and "not ''" in env.stderr
