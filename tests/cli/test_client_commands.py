"""``minimq topics|produce|consume|groups`` through the real entry point, ``python -m minimq``."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from minimq.client import Client
from tests.support.processes import BrokerProcess, free_port


def minimq(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minimq", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def url(shared_broker: BrokerProcess) -> str:
    return shared_broker.url


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_topics_commands(url: str) -> None:
    assert "created topic cli-topics with 3 partition(s)" in ok(
        minimq("topics", "create", "cli-topics", "-p", "3", "--broker-url", url)
    )
    listing = ok(minimq("topics", "list", "--broker-url", url))
    assert listing.splitlines()[0].split() == ["TOPIC", "PARTITIONS", "MESSAGES", "BYTES"]
    assert ["cli-topics", "3", "0", "0"] in [line.split() for line in listing.splitlines()]
    described = orjson.loads(
        ok(minimq("topics", "describe", "cli-topics", "--json", "--broker-url", url))
    )
    assert [p["partition"] for p in described["partition_info"]] == [0, 1, 2]
    assert "PARTITION" in ok(minimq("topics", "describe", "cli-topics", "--broker-url", url))
    ok(minimq("topics", "delete", "cli-topics", "--broker-url", url))
    gone = minimq("topics", "describe", "cli-topics", "--broker-url", url)
    assert gone.returncode == 3
    assert gone.stderr.startswith("minimq: TOPIC_NOT_FOUND:")


def test_produce_lines_and_consume_values(url: str) -> None:
    result = minimq("produce", "cli-lines", "--broker-url", url, stdin="alpha\n\nbeta\ngamma\n")
    assert "produced 3 records to cli-lines" in result.stderr
    assert ok(minimq("consume", "cli-lines", "--broker-url", url)) == "alpha\nbeta\ngamma\n"
    assert (
        ok(minimq("consume", "cli-lines", "--from", "1", "-c", "1", "--broker-url", url))
        == "beta\n"
    )
    assert ok(minimq("consume", "cli-lines", "--from", "latest", "--broker-url", url)) == ""


def test_produce_ndjson_and_records_consume_json(url: str) -> None:
    ok(minimq("topics", "create", "cli-json", "-p", "2", "--broker-url", url))
    values = '{"t": 21.5}\n[1, 2]\n"s"\nnull\n'
    ok(minimq("produce", "cli-json", "-f", "json", "-p", "0", "--broker-url", url, stdin=values))
    records = '{"value": {"r": 1}, "key": "k1", "headers": {"h": "v"}, "partition": 1}\n'
    ok(minimq("produce", "cli-json", "-f", "record", "--broker-url", url, stdin=records))

    by_partition = ok(minimq("consume", "cli-json", "-p", "0", "--broker-url", url))
    assert by_partition == '{"t":21.5}\n[1,2]\ns\nnull\n'
    lines = ok(minimq("consume", "cli-json", "-p", "1", "-f", "json", "--broker-url", url))
    record = orjson.loads(lines)
    assert (record["value"], record["key"], record["headers"]) == ({"r": 1}, "k1", {"h": "v"})
    everything = ok(minimq("consume", "cli-json", "--broker-url", url)).splitlines()
    assert sorted(everything) == sorted(['{"t":21.5}', "[1,2]", "s", "null", '{"r":1}'])


def test_group_consume_commits_and_groups_commands(url: str) -> None:
    lines = "".join(f"{n}\n" for n in range(10))
    ok(minimq("produce", "cli-group", "--broker-url", url, stdin=lines))
    first = ok(minimq("consume", "cli-group", "-g", "cli-g", "-c", "4", "--broker-url", url))
    assert first.split() == ["0", "1", "2", "3"]
    rest = ok(minimq("consume", "cli-group", "-g", "cli-g", "--broker-url", url))
    assert rest.split() == [str(n) for n in range(4, 10)]
    assert ok(minimq("consume", "cli-group", "-g", "cli-g", "--broker-url", url)) == ""

    groups = [
        line.split() for line in ok(minimq("groups", "list", "--broker-url", url)).splitlines()
    ]
    assert ["cli-g", "cli-group", "0", "Empty", "0"] in groups
    described = ok(minimq("groups", "describe", "cli-g", "--broker-url", url))
    assert ["cli-group", "0", "10", "10", "0"] in [line.split() for line in described.splitlines()]

    reset = ok(
        minimq(
            "groups", "reset", "cli-g", "-t", "cli-group", "--to", "offset", "--offset", "7",
            "--json", "--broker-url", url,
        )
    )  # fmt: skip
    assert orjson.loads(reset)["offsets"][0]["committed_offset"] == 7
    assert ok(minimq("consume", "cli-group", "-g", "cli-g", "--broker-url", url)).split() == [
        "7",
        "8",
        "9",
    ]
    ok(minimq("groups", "delete", "cli-g", "--broker-url", url))
    assert minimq("groups", "describe", "cli-g", "--broker-url", url).returncode == 3


def test_follow_prints_new_records(url: str) -> None:
    ok(minimq("topics", "create", "cli-follow", "--broker-url", url))
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "minimq",
            "consume",
            "cli-follow",
            "-F",
            "-c",
            "2",
            "--broker-url",
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        with Client(url) as client:
            client.produce_batch("cli-follow", [{"value": "new-1"}, {"value": "new-2"}])
        out, err = follower.communicate(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert out == "new-1\nnew-2\n"


def test_environment_supplies_broker_url(url: str) -> None:
    listing = minimq("topics", "list", env={"MINIMQ_BROKER_URL": url})
    assert listing.returncode == 0 and listing.stdout.startswith("TOPIC")


def test_exit_codes(url: str) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    down = minimq("topics", "list", "--broker-url", unreachable)
    assert down.returncode == 4
    assert "BROKER_UNAVAILABLE" in down.stderr
    assert minimq("produce", "x", "--broker-url", unreachable, stdin="a\n").returncode == 4

    missing = minimq("consume", "no-such-topic", "--broker-url", url)
    assert (missing.returncode, missing.stdout) == (3, "")
    assert "TOPIC_NOT_FOUND" in missing.stderr

    bad_flag = minimq("consume", "t", "--from", "yesterday", "--broker-url", url)
    assert bad_flag.returncode == 2 and "expected earliest, latest or an offset" in bad_flag.stderr
    assert minimq("topics", "frobnicate").returncode == 2
    assert minimq("consume", "t", "-g", "g", "--from", "3", "--broker-url", url).returncode == 2

    bad_json = minimq("produce", "cli-bad", "-f", "json", "--broker-url", url, stdin="{nope\n")
    assert bad_json.returncode == 1 and "line 1: invalid JSON" in bad_json.stderr


def test_token(tmp_path: Path) -> None:
    data = tmp_path / "secured"
    data.mkdir()
    with BrokerProcess(data, ["--token", "s3cret"]) as broker:
        denied = minimq("topics", "list", "--broker-url", broker.url)
        assert denied.returncode == 5 and "UNAUTHORIZED" in denied.stderr
        env = {"MINIMQ_TOKEN": "s3cret"}
        ok(minimq("produce", "sec", "--broker-url", broker.url, stdin="x\n", env=env))
        assert (
            ok(minimq("consume", "sec", "--broker-url", broker.url, "--token", "s3cret")) == "x\n"
        )


def test_consume_output_closed_early_is_quiet(url: str) -> None:
    ok(
        minimq(
            "produce", "cli-pipe", "--broker-url", url, stdin="".join(f"{n}\n" for n in range(5000))
        )
    )
    pipeline = subprocess.run(
        f"{sys.executable} -m minimq consume cli-pipe --broker-url {url} | head -n 2",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert pipeline.stdout == "0\n1\n"
    assert "Traceback" not in pipeline.stderr


def test_progress_bar_only_when_stdout_is_a_terminal(url: str) -> None:
    lines = "".join(f"{n}\n" for n in range(2000))
    piped = minimq("produce", "cli-progress", "--broker-url", url, stdin=lines)
    assert piped.returncode == 0 and "rec/s" not in piped.stderr and "rec]" not in piped.stderr

    controller, terminal = pty.openpty()
    try:
        on_terminal = subprocess.run(
            [sys.executable, "-m", "minimq", "produce", "cli-progress", "--broker-url", url],
            input=lines.encode(),
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert on_terminal.returncode == 0
    assert "produce cli-progress" in on_terminal.stderr.decode()
