"""The Kafka request decoder and listener under fuzzed input: no crash, no hang, no blow-up.

Two levels. The decoder itself (:func:`minimq.kafka.codec.decode_request`)
gets a valid header for every served API version followed by arbitrary
bytes, and huge array counts: it returns or raises ``MalformedRequest``,
nothing else, and never allocates for counts the bytes cannot hold. Then a
real broker process gets fuzzed frames on its Kafka port (random bodies,
truncated requests, wrong length prefixes, corrupted record batches with
invalid varints): each connection is answered or closed, within a bound,
the log has no traceback, and the broker still serves HTTP and Kafka with
its memory bounded.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import struct
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.kafka.test_wire import batch, metadata_fields, produce_fields
from tests.kafka.wire import WireClient, request_frame
from tests.support.processes import BrokerProcess

from minimq.kafka.apis import APIS
from minimq.kafka.codec import MalformedRequest, decode_request, schemas

SERVED = sorted(
    (key, version)
    for key, handler in APIS.items()
    for version in range(handler.min_version, handler.max_version + 1)
    if not (key == 0 and version < 3)  # Produce v0-2 never reach kio (refused by hand)
)
HEADER = struct.Struct(">hhih")
ANSWER_TIMEOUT_S = 20.0


def header(key: int, version: int, client_id: bytes = b"fuzz") -> bytes:
    return HEADER.pack(key, version, 7, len(client_id)) + client_id


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SERVED), st.binary(max_size=256))
def test_decoder_returns_or_raises_malformed(api: tuple[int, int], body: bytes) -> None:
    request_type, _ = schemas(*api)
    with contextlib.suppress(MalformedRequest):
        decode_request(header(*api) + body, request_type)


def test_huge_array_counts_are_refused_without_allocating() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    for api in SERVED:
        request_type, _ = schemas(*api)
        for filler in (b"\x7f\xff\xff\xff", b"\x00\x00\x00\x01\x7f\xff\xff\xff"):
            # ApiVersions v0-2 has no body at all: whatever follows is left unread.
            with contextlib.suppress(MalformedRequest):
                decode_request(header(*api) + filler * 8, request_type)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 64, f"decoding huge counts grew the peak RSS by {grown_mib:.0f} MiB"
    assert time.monotonic() - started < 60, "decoding huge counts took too long (a loop?)"


# -- a real broker under fuzzed frames --------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("kafka-fuzz") / "data"
    with BrokerProcess(data, ["--kafka-max-request-bytes", str(1 << 20)], kafka=True) as process:
        yield process


def exchange(broker: BrokerProcess, data: bytes, half_close: bool) -> None:
    """Send ``data``; the broker must answer or close within the bound (no hang)."""
    with WireClient(broker.kafka_bootstrap, timeout=ANSWER_TIMEOUT_S) as wire:
        try:
            wire.send(data)
            if half_close:
                wire.sock.shutdown(socket.SHUT_WR)
            while wire.recv_frame() is not None:
                pass  # answers until the broker closes (after EOF it must)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the broker while we were still sending
        except TimeoutError:
            if half_close:
                raise AssertionError("the broker neither answered nor closed") from None


VALID = [
    request_frame(3, 8, 1, **metadata_fields("fuzz-a", "fuzz-b")),
    request_frame(0, 8, 2, **produce_fields("fuzz-p", batch([b"one", b"two"]))),
    request_frame(18, 2, 3),
]


@st.composite
def fuzzed_frames(draw: st.DrawFn) -> tuple[bytes, bool]:
    kind = draw(st.sampled_from(["random body", "truncated", "wrong size", "corrupt batch"]))
    if kind == "random body":
        key, version = draw(st.sampled_from(SERVED))
        body = header(key, version) + draw(st.binary(max_size=300))
        return struct.pack(">i", len(body)) + body, True
    valid = draw(st.sampled_from(VALID))
    if kind == "truncated":
        cut = draw(st.integers(8, len(valid) - 5))
        body = valid[4 : 4 + cut]
        return struct.pack(">i", len(body)) + body, True
    if kind == "wrong size":
        claimed = draw(st.integers(-10, len(valid) + 100))
        return struct.pack(">i", claimed) + valid[4:], True
    # A Produce whose batch bytes are mutated: bad CRCs, lengths, invalid varints.
    records = bytearray(batch([b"alpha", b"beta"], key=b"k"))
    for _ in range(draw(st.integers(1, 6))):
        records[draw(st.integers(0, len(records) - 1))] = draw(st.integers(0, 255))
    tail = draw(st.binary(max_size=16))  # e.g. a run of 0xff: a varint that never ends
    frame = request_frame(0, 8, 9, **produce_fields("fuzz-corrupt", bytes(records) + tail))
    return frame, True


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(fuzzed_frames())
def test_broker_survives_fuzzed_frames(broker: BrokerProcess, frame: tuple[bytes, bool]) -> None:
    exchange(broker, *frame)


def test_after_the_fuzzing_the_broker_is_healthy_and_logged_no_crash(
    broker: BrokerProcess,
) -> None:
    # Some garbage and an oversized prefix on top of the fuzzed frames (same module broker).
    exchange(broker, b"\x00\x00\x00\x10" + b"\xde\xad\xbe\xef" * 4, True)
    exchange(broker, struct.pack(">i", (1 << 20) + 1), True)
    assert httpx.get(f"{broker.url}/healthz", timeout=10).status_code == 200
    with WireClient(broker.kafka_bootstrap) as wire:
        assert wire.call(18, 2).error_code == 0
        assert wire.call(3, 8, **metadata_fields("fuzz-after")).topics[0].error_code == 0
    log = broker.log()
    assert "Traceback" not in log, log[-4000:]
    assert " ERROR " not in log, log[-4000:]
    assert "WARNING minimq.kafka: kafka: closing connection from 127.0.0.1:" in log
    assert broker.process is not None
    rss_mib = psutil.Process(broker.process.pid).memory_info().rss / (1 << 20)
    assert rss_mib < 400, f"broker RSS {rss_mib:.0f} MiB after the fuzzing"
