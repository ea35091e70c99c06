"""Group sessions and connection timeouts do not care when the wall clock jumps.

A real broker runs under an ``LD_PRELOAD`` shim (C, built here with gcc) that
adds an offset to ``CLOCK_REALTIME`` only, read from a file the test rewrites:
the broker's wall clock jumps, its monotonic clock does not. Before, session
expiry ran on the wall clock: after stepping it back 1 h a dead member kept
its partition for the hour, and stepping it forward expired every member at
once. Now:

* stepped back 1 h, a silent member still expires after the session timeout
  and its partition moves to the live one;
* stepped forward 2 h, members that keep heartbeating keep their partitions
  (no rebalance), and an idle keep-alive connection of the produce lane is
  not closed by its keep-alive sweep;
* record timestamps do follow the wall clock, which also shows that the shim
  reached the broker (the test fails, saying so, when it did not).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.processes import BrokerProcess

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_REALTIME + the int64 nanoseconds in $WALL_OFFSET_FILE (re-read on every call). */
static volatile const int64_t *offset_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

__attribute__((constructor)) static void shim_init(void) {
    real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("WALL_OFFSET_FILE");
    int fd = path ? open(path, O_RDONLY) : -1;
    if (fd < 0) return;
    void *map = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map != MAP_FAILED) offset_ns = map;
}

static void shift(struct timespec *ts) {
    int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + (offset_ns ? *offset_ns : 0);
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    int result = real_clock_gettime(clock, ts);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) shift(ts);
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
"""

SESSION_TIMEOUT_S = 2.0
HOUR_NS = 3600 * 10**9
GROUP = "clock-group"
TOPIC = "clock"


@pytest.fixture
def shim(tmp_path: Path) -> tuple[Path, Path]:
    """The built shim and its offset file (0 to start with)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.fail("this test builds an LD_PRELOAD shim and needs gcc or cc, which is missing")
    source = tmp_path / "wall_offset.c"
    source.write_text(SHIM)
    library = tmp_path / "wall_offset.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    offset = tmp_path / "wall_offset"
    offset.write_bytes(struct.pack("=q", 0))
    return library, offset


def set_offset(offset_file: Path, nanoseconds: int) -> None:
    # In place, not a new file: the broker has it mapped.
    with offset_file.open("r+b") as file:
        file.write(struct.pack("=q", nanoseconds))


def heartbeat(client: httpx.Client, member: str) -> list[int]:
    answer = client.post(
        f"/v1/groups/{GROUP}/heartbeat", json={"topic": TOPIC, "member_id": member}
    )
    assert answer.status_code == 200, answer.text
    return sorted(answer.json()["assignment"])


def broker_wall_offset_s(client: httpx.Client) -> float:
    """How far the broker's wall clock is from ours, read from a record's timestamp."""
    sent = time.time()
    answer = client.post(f"/v1/topics/{TOPIC}-stamps/records", json={"records": [{"value": 1}]})
    assert answer.status_code == 200, answer.text
    offset = answer.json()["offsets"][0]["offset"]
    fetched = client.get(
        f"/v1/topics/{TOPIC}-stamps/partitions/0/records", params={"offset": offset, "limit": 1}
    )
    return float(fetched.json()["records"][0]["timestamp"]) / 1000 - sent


def until(condition, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} within {timeout:g}s"
        time.sleep(0.2)
    return time.monotonic() - started


def test_sessions_and_keepalive_ignore_wall_clock_jumps(
    data_dir: Path, shim: tuple[Path, Path]
) -> None:
    library, offset_file = shim
    env = {"LD_PRELOAD": str(library), "WALL_OFFSET_FILE": str(offset_file)}
    args = ["--session-timeout-ms", str(int(SESSION_TIMEOUT_S * 1000))]
    with (
        BrokerProcess(data_dir, args, env=env) as broker,
        httpx.Client(base_url=broker.url, timeout=10) as client,
    ):
        created = client.post("/v1/topics", json={"name": TOPIC, "partitions": 2})
        assert created.status_code == 201, created.text
        heartbeat(client, "a")
        until(lambda: heartbeat(client, "b") == [1] and heartbeat(client, "a") == [0], 10,
              "a and b own one partition each")  # fmt: skip
        assert abs(broker_wall_offset_s(client)) < 30

        # Back 1 h. "a" goes silent; "b" keeps heartbeating.
        set_offset(offset_file, -HOUR_NS)
        jumped = broker_wall_offset_s(client)
        assert -3660 < jumped < -3540, (
            f"the broker's wall clock moved {jumped:.0f}s, not -3600s: the LD_PRELOAD shim"
            " did not reach it, so this test would show nothing"
        )
        took = until(lambda: heartbeat(client, "b") == [0, 1], SESSION_TIMEOUT_S + 8,
                     "the silent member expired after the wall clock stepped back")  # fmt: skip

        # Forward 2 h, with both members heartbeating: nobody expires, nothing moves.
        until(lambda: heartbeat(client, "a") == [0] and heartbeat(client, "b") == [1], 10,
              "a rejoined")  # fmt: skip
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as lane:
            body = orjson.dumps({"topic": f"{TOPIC}-lane", "message": 1})
            request = (
                f"POST /produce HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            lane.sendall(request)
            assert lane.recv(65536).startswith(b"HTTP/1.1 201")
            set_offset(offset_file, HOUR_NS)
            assert broker_wall_offset_s(client) > 3540
            seen = set()
            deadline = time.monotonic() + max(3 * SESSION_TIMEOUT_S, 6)  # past a lane sweep (5 s)
            while time.monotonic() < deadline:
                seen.add(("a", tuple(heartbeat(client, "a"))))
                seen.add(("b", tuple(heartbeat(client, "b"))))
                time.sleep(0.25)
            assert seen == {("a", (0,)), ("b", (1,))}, f"members moved after the jump: {seen}"
            # The idle keep-alive connection was not closed by a wall-clock sweep.
            lane.sendall(request)
            assert lane.recv(65536).startswith(b"HTTP/1.1 201"), "the lane closed the connection"
        print(
            f"\nwall clock back 1 h: the silent member expired {took:.1f}s later (session"
            f" timeout {SESSION_TIMEOUT_S:g}s); forward 2 h: no member expired, keep-alive kept"
        )
