"""The produce lane over raw sockets: same answers as aiohttp, order kept, hand-off exact.

Every connection starts in the lane; a ``GET /healthz`` first hands it to
aiohttp for good, which is how these tests get aiohttp's answer to compare.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minimq.core import Broker
from minimq.server import produce_lane
from minimq.server.gate import RequestGate
from minimq.server.metrics import BrokerMetrics
from tests.support.memory_storage import MemoryStorage
from tests.support.processes import BrokerProcess

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
TOKEN = "lane-secret"


def post(path: str, body: bytes, *headers: str) -> bytes:
    extra = "".join(f"{header}\r\n" for header in headers)
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def legacy(topic: str, message: object, *headers: str) -> bytes:
    return post("/produce", orjson.dumps({"topic": topic, "message": message}), *headers)


def records(topic: str, *values: object) -> bytes:
    body = orjson.dumps({"records": [{"value": value} for value in values]})
    return post(f"/v1/topics/{topic}/records", body)


def exact(body: bytes, *lines: str, path: str = "/produce") -> bytes:
    """A POST with exactly these header lines; ``{length}`` stands for the body's length."""
    head = "".join(f"{line}\r\n" for line in lines).replace("{length}", str(len(body)))
    return f"POST {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body


class Response:
    def __init__(
        self, status: int, headers: dict[str, str], body: bytes, interim: tuple[int, ...] = ()
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.interim = interim  # the statuses of 1xx answers before this one

    def json(self) -> Any:
        return orjson.loads(self.body)


class Connection:
    """One keep-alive connection that reads responses by their Content-Length."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.pending = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> Response:
        interim: list[int] = []
        while True:
            while b"\r\n\r\n" not in self.pending:
                self._receive()
            head, self.pending = self.pending.split(b"\r\n\r\n", 1)
            status_line, *lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            if status >= 200:
                break
            interim.append(status)  # 100 Continue: no body, the answer follows
        headers = {}
        for line in lines:
            name, value = line.split(":", 1)
            assert name.lower() not in headers, f"repeated header {name}"
            headers[name.lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.pending) < length:
            self._receive()
        body, self.pending = self.pending[:length], self.pending[length:]
        return Response(status, headers, body, tuple(interim))

    def closed_by_peer(self) -> bool:
        self.sock.settimeout(5)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the broker")
        self.pending += data

    def close(self) -> None:
        self.sock.close()


def connector(port: int, opened: list[Connection]) -> Callable[[], Connection]:
    def open_connection() -> Connection:
        connection = Connection(port)
        opened.append(connection)
        return connection

    return open_connection


@pytest.fixture
def connect(shared_broker: BrokerProcess) -> Iterator[Callable[[], Connection]]:
    opened: list[Connection] = []
    yield connector(shared_broker.port, opened)
    for connection in opened:
        connection.close()


@pytest.fixture
def opened() -> Iterator[list[Connection]]:
    """Connections a test opens to a broker of its own, closed at the end."""
    connections: list[Connection] = []
    yield connections
    for connection in connections:
        connection.close()


class LaneCounts:
    """The lane's two counters from /metrics, read over one kept-alive connection
    (its first request hands that connection to aiohttp once, in __init__)."""

    def __init__(self, broker: BrokerProcess) -> None:
        self.client = httpx.Client(base_url=broker.url)
        self.last = self.read()

    def read(self) -> tuple[float, float]:
        text = self.client.get("/metrics").text

        def counter(name: str) -> float:
            found = re.search(rf"^{name}_total (\S+)", text, re.MULTILINE)
            assert found is not None, f"{name} missing from /metrics"
            return float(found.group(1))

        return counter("minimq_produce_lane_requests"), counter("minimq_produce_lane_handoffs")

    def change(self) -> tuple[int, int]:
        """(requests served by the lane, connections handed off) since the last call."""
        now = self.read()
        change = (int(now[0] - self.last[0]), int(now[1] - self.last[1]))
        self.last = now
        return change


@pytest.fixture
def lane_counts(shared_broker: BrokerProcess) -> Iterator[LaneCounts]:
    counts = LaneCounts(shared_broker)
    yield counts
    counts.client.close()


def through_aiohttp(connect, request: bytes) -> Response:
    connection = connect()
    connection.send(HEALTHZ)
    assert connection.response().status == 200
    connection.send(request)
    return connection.response()


def through_lane(connect, request: bytes) -> Response:
    connection = connect()
    connection.send(request)
    return connection.response()


def comparable(response: Response) -> tuple[tuple[int, ...], int, dict[str, str], Any]:
    """Statuses, headers but Date, and the body with offsets zeroed (they differ per call)."""
    headers = {name: value for name, value in response.headers.items() if name != "date"}
    body = re.sub(rb'"offset":\d+', b'"offset":0', response.body)
    headers["content-length"] = str(len(body))
    try:
        content: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        content = body  # aiohttp's own plain-text answers (417)
    return response.interim, response.status, headers, content


CASES = {
    "legacy produce": legacy("lane-same", {"v": 1.5}),
    "v1 produce": records("lane-same", 1, "two", None),
    "legacy, no message": post("/produce", b'{"topic": "lane-same"}'),
    "legacy, bad topic name": legacy("..", 1),
    "v1, bad topic name": records("..", 1),
    "v1, unknown field": post("/v1/topics/lane-same/records", b'{"records": [], "x": 1}'),
    "malformed JSON": post("/produce", b'{"topic": "lane-same", "message": NaN}'),
    "invalid UTF-8": post("/produce", b'{"topic": "lane-same", "message": "\xff"}'),
    "deep nesting": post(
        "/produce", b'{"topic": "t", "message": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    ),
    "empty body": post("/produce", b""),
    "JSON array body": post("/produce", b"[1, 2]"),
    "record over the limit": legacy("lane-same", "x" * 60_000),
}


@pytest.mark.parametrize("request_bytes", CASES.values(), ids=CASES.keys())
def test_the_lane_answers_exactly_as_aiohttp(
    connect: Callable[[], Connection], lane_counts: LaneCounts, request_bytes: bytes
) -> None:
    by_lane = through_lane(connect, request_bytes)
    assert lane_counts.change() == (1, 0)
    by_aiohttp = through_aiohttp(connect, request_bytes)
    assert lane_counts.change() == (0, 1)
    assert comparable(by_lane) == comparable(by_aiohttp)


HEADERS_BODY = orjson.dumps({"topic": "lane-headers", "message": {"sent": "plain"}})
PLAIN = ("Host: x", "Content-Type: application/json", "Content-Length: {length}")

# Header variations: (request, served by the lane). The lane serves only headers
# on its list, each once; every other request must reach aiohttp, whose answer,
# and what it stores, the lane's path must not change.
HEADER_CASES = {
    "gzip body": (
        exact(gzip.compress(HEADERS_BODY), *PLAIN, "Content-Encoding: gzip"),
        False,
    ),
    "deflate body": (
        exact(zlib.compress(HEADERS_BODY), *PLAIN, "Content-Encoding: deflate"),
        False,
    ),
    # aiohttp answers a body that is not the gzip it claims with a 500 today;
    # whatever aiohttp answers, the lane must answer the same.
    "gzip claimed, plain body": (exact(HEADERS_BODY, *PLAIN, "Content-Encoding: gzip"), False),
    "unknown content encoding": (exact(HEADERS_BODY, *PLAIN, "Content-Encoding: x-zz"), False),
    "identity content encoding": (
        exact(HEADERS_BODY, *PLAIN, "Content-Encoding: identity"),
        False,
    ),
    "unknown header": (exact(HEADERS_BODY, *PLAIN, "X-Request-Id: 42"), False),
    "expect 100-continue": (exact(HEADERS_BODY, *PLAIN, "Expect: 100-continue"), False),
    "unknown expectation": (exact(HEADERS_BODY, *PLAIN, "Expect: teapot"), False),
    "trailer": (exact(HEADERS_BODY, *PLAIN, "Trailer: X-Checksum"), False),
    "TE": (exact(HEADERS_BODY, *PLAIN, "TE: trailers"), False),
    "upgrade": (
        exact(HEADERS_BODY, *PLAIN, "Connection: Upgrade", "Upgrade: websocket"),
        False,
    ),
    "old websocket key": (exact(HEADERS_BODY, *PLAIN, "Sec-WebSocket-Key1: 1"), False),
    "transfer-encoding identity": (
        exact(HEADERS_BODY, *PLAIN, "Transfer-Encoding: identity"),
        False,
    ),
    "no Host": (exact(HEADERS_BODY, "Content-Length: {length}"), False),
    "empty Host": (exact(HEADERS_BODY, "Host:", "Content-Length: {length}"), True),
    "two Hosts": (exact(HEADERS_BODY, *PLAIN, "Host: y"), False),
    "two Content-Types": (exact(HEADERS_BODY, *PLAIN, "content-type: text/plain"), False),
    "two User-Agents": (exact(HEADERS_BODY, *PLAIN, "User-Agent: a", "User-Agent: b"), False),
    "two Accepts": (exact(HEADERS_BODY, *PLAIN, "Accept: a/b", "Accept: c/d"), False),
    "two equal Content-Lengths": (
        exact(HEADERS_BODY, *PLAIN, "Content-Length: {length}"),
        False,
    ),
    "lower-case names": (
        exact(
            HEADERS_BODY, "host: x", "content-type: application/json", "content-length: {length}"
        ),
        True,
    ),
    "upper-case names": (
        exact(
            HEADERS_BODY, "HOST: x", "CONTENT-TYPE: application/json", "CONTENT-LENGTH: {length}"
        ),
        True,
    ),
    "every header the lane knows": (
        exact(
            HEADERS_BODY,
            *PLAIN,
            "Accept: application/json",
            "Accept-Encoding: gzip, deflate",
            "User-Agent: caf\xe9/1.0",
            "Connection: Keep-Alive",
            "Keep-Alive: timeout=5, max=100",
            "Authorization: Bearer not-checked-without-a-token",
        ),
        True,
    ),
    "another content type": (
        exact(HEADERS_BODY, "Host: x", "Content-Type: text/plain", "Content-Length: {length}"),
        True,
    ),
    "length with leading zeros": (
        exact(HEADERS_BODY, "Host: x", "Content-Length: 00{length}"),
        True,
    ),
    "trailing blanks in values": (
        exact(HEADERS_BODY, "Host: x  ", "Accept: */*\t", "Content-Length: {length}"),
        True,
    ),
}


def stored_values(broker: BrokerProcess, response: Response) -> list[Any]:
    """The values a produce answer says were stored, read back from the broker."""
    if response.status not in (200, 201):
        return []
    answer = response.json()
    positions = answer.get("offsets") or [answer]
    values = []
    for position in positions:
        fetched = httpx.get(
            f"{broker.url}/v1/topics/{answer['topic']}/partitions/{position['partition']}/records",
            params={"offset": position["offset"], "limit": 1},
        ).json()["records"]
        values.append(fetched[0]["value"])
    return values


@pytest.mark.parametrize(
    ("request_bytes", "served_by_lane"), HEADER_CASES.values(), ids=HEADER_CASES.keys()
)
def test_header_variations_are_answered_and_stored_as_by_aiohttp(
    connect: Callable[[], Connection],
    shared_broker: BrokerProcess,
    lane_counts: LaneCounts,
    request_bytes: bytes,
    served_by_lane: bool,
) -> None:
    by_lane = through_lane(connect, request_bytes)
    lane_path = lane_counts.change()
    by_aiohttp = through_aiohttp(connect, request_bytes)
    aiohttp_path = lane_counts.change()
    assert comparable(by_lane) == comparable(by_aiohttp)
    stored = stored_values(shared_broker, by_lane)
    assert stored == stored_values(shared_broker, by_aiohttp)
    if stored:
        assert stored == [{"sent": "plain"}]
    assert lane_path == ((1, 0) if served_by_lane else (0, 1))
    assert aiohttp_path == (0, 1)


def test_record_limit_is_the_same_on_both_paths(data_dir: Path, opened: list[Connection]) -> None:
    with BrokerProcess(data_dir, ["--max-record-bytes", "100"]) as broker:
        connect = connector(broker.port, opened)
        request = legacy("lane-limit", "x" * 200)
        lane = through_lane(connect, request)
        aio = through_aiohttp(connect, request)
        assert lane.status == 413
        assert comparable(lane) == comparable(aio)


def test_pipelined_requests_are_answered_in_order_on_one_connection(
    connect: Callable[[], Connection], lane_counts: LaneCounts
) -> None:
    connection = connect()
    # A refused request is answered at once and a produce only after its fsync:
    # served side by side, the refusals would overtake the produces.
    requests = [
        legacy("lane-order", n) if n % 2 == 0 else post("/produce", b"{}") for n in range(50)
    ]
    requests[20] = records("lane-order-other", 20)  # another route in between
    connection.send(b"".join(requests))
    answers = [connection.response() for _ in requests]
    expected = [201 if n % 2 == 0 else 400 for n in range(50)]
    expected[20] = 200
    assert [answer.status for answer in answers] == expected
    offsets = [answer.json()["offset"] for answer in answers if answer.status == 201]
    assert offsets == list(range(offsets[0], offsets[0] + 24))
    assert answers[20].json()["topic"] == "lane-order-other"
    assert lane_counts.change() == (50, 0)


def test_a_request_for_aiohttp_mid_pipeline_keeps_the_order(
    connect: Callable[[], Connection], shared_broker: BrokerProcess, lane_counts: LaneCounts
) -> None:
    connection = connect()
    connection.send(legacy("lane-mixed", "a") + HEALTHZ + legacy("lane-mixed", "b"))
    first, health, second = (connection.response() for _ in range(3))
    assert (first.status, health.json(), second.status) == (201, {"status": "ok"}, 201)
    assert second.json()["offset"] == first.json()["offset"] + 1
    assert lane_counts.change() == (1, 1)
    fetched = httpx.get(
        f"{shared_broker.url}/v1/topics/lane-mixed/partitions/0/records", params={"offset": 0}
    ).json()["records"]
    assert [record["value"] for record in fetched] == ["a", "b"]


@pytest.mark.parametrize(
    ("split_at", "served_by_lane"),
    [
        ("inside the request line", False),
        ("inside the head", False),
        ("after the head", True),
        ("inside the body", True),
    ],
)
def test_a_request_in_pieces_is_served_whole(
    connect: Callable[[], Connection],
    shared_broker: BrokerProcess,
    lane_counts: LaneCounts,
    split_at: str,
    served_by_lane: bool,
) -> None:
    """A head in pieces goes to aiohttp; a body in pieces is awaited by the lane."""
    request = legacy("lane-pieces", {"piece": split_at})
    head_end = request.index(b"\r\n\r\n") + 4
    cut = {
        "inside the request line": 10,
        "inside the head": head_end // 2,
        "after the head": head_end,
        "inside the body": head_end + 5,
    }[split_at]
    connection = connect()
    connection.send(request[:cut])
    time.sleep(0.2)  # the broker reads the first piece on its own
    connection.send(request[cut:] + legacy("lane-pieces", "next"))
    first, second = connection.response(), connection.response()
    assert (first.status, second.status) == (201, 201)
    assert second.json()["offset"] == first.json()["offset"] + 1
    assert lane_counts.change() == ((2, 0) if served_by_lane else (0, 1))
    stored = httpx.get(
        f"{shared_broker.url}/v1/topics/lane-pieces/partitions/0/records",
        params={"offset": first.json()["offset"], "limit": 1},
    ).json()["records"]
    assert stored[0]["value"] == {"piece": split_at}


def test_connection_close_is_honoured(
    connect: Callable[[], Connection], lane_counts: LaneCounts
) -> None:
    connection = connect()
    connection.send(legacy("lane-close", 1, "Connection: close"))
    answer = connection.response()
    assert answer.status == 201
    assert lane_counts.change() == (0, 1)
    assert answer.headers["connection"] == "close"
    assert connection.closed_by_peer()


def test_many_requests_on_one_keep_alive_connection(
    connect: Callable[[], Connection], lane_counts: LaneCounts
) -> None:
    connection = connect()
    for n in range(200):
        connection.send(legacy("lane-keepalive", n))
        assert connection.response().json()["offset"] == n
    assert lane_counts.change() == (200, 0)


def test_unusual_framing_goes_to_aiohttp_and_is_served(
    connect: Callable[[], Connection], lane_counts: LaneCounts
) -> None:
    body = orjson.dumps({"topic": "lane-chunked", "message": "chunked"})
    chunked = (
        b"POST /produce HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    connection = connect()
    connection.send(chunked + legacy("lane-chunked", "after"))
    first, second = connection.response(), connection.response()
    assert (first.status, second.status) == (201, 201)
    assert second.json()["offset"] == first.json()["offset"] + 1
    assert lane_counts.change() == (0, 1)


def test_a_body_that_never_arrives_times_out(data_dir: Path, opened: list[Connection]) -> None:
    with BrokerProcess(data_dir, ["--request-timeout", "0.5"]) as broker:
        connection = connector(broker.port, opened)()
        request = legacy("lane-slow", 1)
        connection.send(request[:-3])
        started = time.monotonic()
        answer = connection.response()
        assert answer.status == 408
        assert answer.json()["error"]["code"] == "REQUEST_TIMEOUT"
        assert 0.4 < time.monotonic() - started < 5
        assert connection.closed_by_peer()


def test_a_token_guards_the_lane_as_it_guards_aiohttp(
    data_dir: Path, opened: list[Connection]
) -> None:
    with BrokerProcess(data_dir, ["--token", TOKEN]) as broker:
        connect = connector(broker.port, opened)
        for headers in [(), ("Authorization: Bearer wrong",), ("Authorization: Basic " + TOKEN,)]:
            request = legacy("lane-auth", 1, *headers)
            lane = through_lane(connect, request)
            assert lane.status == 401
            assert lane.headers["www-authenticate"] == 'Bearer realm="minimq"'
            # /healthz needs no token, so it hands the connection over either way.
            assert comparable(lane) == comparable(through_aiohttp(connect, request))
        granted = through_lane(connect, legacy("lane-auth", 1, f"Authorization: Bearer {TOKEN}"))
        assert granted.status == 201


def test_lane_requests_are_counted_in_the_request_metrics(
    connect: Callable[[], Connection], shared_broker: BrokerProcess
) -> None:
    def count(route: str, status: int) -> float:
        text = httpx.get(f"{shared_broker.url}/metrics").text
        labels = f'method="POST",route="{re.escape(route)}",status="{status}"'
        pattern = r"minimq_http_request_seconds_count\{" + labels + r"\} (\S+)"
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    before = (count("/produce", 201), count("/v1/topics/{topic}/records", 200))
    connection = connect()
    connection.send(legacy("lane-metrics", 1) * 3 + records("lane-metrics", 1, 2))
    for _ in range(4):
        connection.response()
    assert count("/produce", 201) == before[0] + 3
    assert count("/v1/topics/{topic}/records", 200) == before[1] + 1


def test_sigterm_answers_the_request_in_flight_then_closes_lane_connections(
    data_dir: Path, opened: list[Connection]
) -> None:
    broker = BrokerProcess(data_dir).start()
    connect = connector(broker.port, opened)
    idle = connect()
    idle.send(legacy("lane-stop", "warm-up"))
    assert idle.response().status == 201
    busy = connect()
    busy.send(legacy("lane-stop", "last"))
    assert broker.stop() == 0
    assert busy.response().status == 201
    assert idle.closed_by_peer() and busy.closed_by_peer()
    with BrokerProcess(data_dir) as again:
        values = httpx.get(
            f"{again.url}/v1/topics/lane-stop/partitions/0/records", params={"offset": 0}
        ).json()["records"]
        assert [record["value"] for record in values] == ["warm-up", "last"]


@pytest.mark.parametrize(("pad", "status"), [(8_100, 201), (9_000, 400)])
def test_a_long_header_block_goes_to_aiohttp_and_its_limits(
    connect: Callable[[], Connection], lane_counts: LaneCounts, pad: int, status: int
) -> None:
    connection = connect()
    connection.send(legacy("lane-long-head", 1, "X-Pad: " + "p" * pad))
    assert connection.response().status == status
    assert lane_counts.change() == (0, 1)


PIPELINE_ITEMS = {
    "legacy": (lambda n: legacy("lane-fuzz", n), 201),
    "records": (lambda n: records("lane-fuzz", n), 200),
    "refused": (lambda n: post("/produce", b'{"topic": "lane-fuzz"}'), 400),
    "health": (lambda n: HEALTHZ, 200),
}


@given(
    kinds=st.lists(st.sampled_from(sorted(PIPELINE_ITEMS)), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=2_000), max_size=6),
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_pipeline_cut_anywhere_is_answered_in_order(
    shared_broker: BrokerProcess, kinds: list[str], cuts: list[int]
) -> None:
    """Requests of every kind, cut into pieces at arbitrary bytes: answered once each, in order."""
    stream = b"".join(PIPELINE_ITEMS[kind][0](n) for n, kind in enumerate(kinds))
    connection = Connection(shared_broker.port)
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        start = 0
        for cut in [*sorted({min(cut, len(stream)) for cut in cuts}), len(stream)]:
            if cut > start:
                connection.send(stream[start:cut])
                time.sleep(0.002)  # let the broker read each piece on its own
                start = cut
        answers = [connection.response() for _ in kinds]
    finally:
        connection.close()
    assert [answer.status for answer in answers] == [PIPELINE_ITEMS[kind][1] for kind in kinds]
    produced = [answer.json() for answer in answers if answer.status in (200, 201)]
    offsets = [
        body["offset"] if "offset" in body else body["offsets"][0]["offset"]
        for body in produced
        if "topic" in body
    ]
    if offsets:
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))


def test_authorization_header_variations_are_judged_like_aiohttp(
    data_dir: Path, opened: list[Connection]
) -> None:
    wrong_first = ("Authorization: Bearer wrong", f"Authorization: Bearer {TOKEN}")
    variations = {
        "repeated, wrong first": (wrong_first, 401),
        "repeated, right first": (wrong_first[::-1], 201),  # aiohttp reads the first
        "lower-case name": ((f"authorization: Bearer {TOKEN}",), 201),
        "blanks around the value": ((f"Authorization:  Bearer {TOKEN} \t",), 201),
        # RFC 7235: one or more spaces after the scheme, which is case-insensitive
        # (tests/reliability/test_auth.py has the whole rule).
        "blanks inside the value": ((f"Authorization: Bearer  {TOKEN}",), 201),
        "scheme in lower case": ((f"Authorization: bearer {TOKEN}",), 201),
    }
    with BrokerProcess(data_dir, ["--token", TOKEN]) as broker:
        connect = connector(broker.port, opened)
        for name, (headers, status) in variations.items():
            request = legacy("lane-auth-variations", name, *headers)
            by_lane = through_lane(connect, request)
            assert by_lane.status == status, name
            assert comparable(by_lane) == comparable(through_aiohttp(connect, request)), name


async def test_idle_lane_connections_close_after_the_keepalive_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In process, with the sweep and the keep-alive timeout shortened to fractions of a second."""
    monkeypatch.setattr(produce_lane, "SWEEP_INTERVAL_S", 0.05)
    metrics = BrokerMetrics()
    broker = Broker(MemoryStorage(), observer=metrics)  # type: ignore[arg-type]
    lane = produce_lane.ProduceLane(
        broker,
        metrics,
        RequestGate(max_in_flight=100, token=None),
        max_body_bytes=1024,
        request_timeout_s=5,
        keepalive_timeout_s=0.3,
    )

    def not_handed_off() -> asyncio.Protocol:
        raise AssertionError("this test sends only lane requests")

    server = await asyncio.get_running_loop().create_server(
        lambda: lane.connection(not_handed_off), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(legacy("lane-idle", 1))
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 201 Created\r\n")
        await reader.readexactly(len(b'{"topic":"lane-idle","partition":0,"offset":0}'))
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the broker
        assert 0.25 < asyncio.get_running_loop().time() - started < 2
        assert not lane.connections
        writer.close()
    finally:
        server.close()
        await lane.shutdown(1)
        await broker.close()
