"""A commit refused because its fsync failed never takes effect, not even after kill -9.

Issue #17, defect 5.  SQLite writes a commit to its WAL and then fsyncs; when
only the fsync fails, the broker answers 503 but the frames are in the page
cache, and after kill -9 the WAL replay used to apply the refused commit, so
the record that ``/consume`` (or a ``commit=true`` group fetch) had *not*
handed out was skipped.  Now the offsets store records the refused
transaction, leaves service (every later commit ``503 OFFSETS_FAILED`` until
a restart) and undoes that transaction when it opens again.

Two ways to make the fsync fail, both unprivileged:

* a wrapped SQLite connection in the broker child (``tests/support/
  offsets_faults``): the COMMIT runs and is durable, then the fsync "fails"
  (SQLite's worst case: the refused commit is certainly on disk);
* a real ``EIO`` from ``fdatasync`` of the WAL, injected with ``strace``
  attached to the running broker (skipped, saying why, where strace cannot
  attach).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import BrokerProcess

TOPIC = "t"
SITE = Path(__file__).resolve().parents[1] / "support" / "offsets_faults"


def _faulty_broker(data_dir: Path, arm: Path) -> BrokerProcess:
    path = os.pathsep.join([str(SITE), os.environ.get("PYTHONPATH", "")])
    return BrokerProcess(
        data_dir, env={"PYTHONPATH": path, "MINIMQ_TEST_OFFSETS_FAULT_ARM": str(arm)}
    )


def _consume(client: httpx.Client) -> httpx.Response:
    return client.get("/consume", params={"topic": TOPIC, "consumer_id": "c"})


def _code(answer: httpx.Response) -> str:
    return str(answer.json()["error"]["code"])


def _start_with_records(broker: BrokerProcess) -> httpx.Client:
    broker.start()
    client = httpx.Client(base_url=broker.url, timeout=30)
    produced = client.post(
        f"/v1/topics/{TOPIC}/records", json={"records": [{"value": n} for n in range(10)]}
    )
    assert produced.status_code == 200, produced.text
    for expected in range(3):
        answer = _consume(client)
        assert answer.status_code == 200 and answer.json()["offset"] == expected, answer.text
    return client


def test_a_commit_refused_before_kill_9_is_undone(data_dir: Path) -> None:
    arm = data_dir.parent / "fail-offsets-commits"
    broker = _faulty_broker(data_dir, arm)
    try:
        client = _start_with_records(broker)
        arm.touch()
        refused = _consume(client)  # commits 4, hands out record 3 only if that returned
        arm.unlink()
        assert refused.status_code == 503, refused.text
        client.close()
        broker.kill()
        broker.start()
        with httpx.Client(base_url=broker.url, timeout=30) as client:
            answer = _consume(client)
            assert answer.status_code == 200, answer.text
            assert answer.json()["offset"] == 3, (
                "record 3 was never handed out: the refused commit must not skip it"
            )
            described = client.get("/v1/groups/c").json()["offsets"]
            assert [o["committed_offset"] for o in described] == [4]
        assert "undid 1 committed offset(s) of a commit that was refused" in broker.log()
    finally:
        broker.kill()


def test_after_a_failed_commit_every_commit_is_refused_until_restart(data_dir: Path) -> None:
    arm = data_dir.parent / "fail-offsets-commits"
    broker = _faulty_broker(data_dir, arm)
    try:
        client = _start_with_records(broker)
        member = client.post("/v1/groups/m/join", json={"topic": TOPIC, "member_id": "m1"})
        generation = member.json()["generation"]
        arm.touch()
        assert _code(_consume(client)) == "OFFSETS_FAILED"
        arm.unlink()
        # Out of service: commits of every kind are refused, with one stable code ...
        assert _code(_consume(client)) == "OFFSETS_FAILED"
        fetch = client.get(
            f"/v1/groups/m/topics/{TOPIC}/records",
            params={"member_id": "m1", "generation": generation, "commit": "true"},
        )
        assert fetch.status_code == 503 and _code(fetch) == "OFFSETS_FAILED", fetch.text
        commit = client.post(
            "/v1/groups/m/commit",
            json={
                "member_id": "m1",
                "generation": generation,
                "offsets": [{"topic": TOPIC, "partition": 0, "offset": 5}],
            },
        )
        assert commit.status_code == 503 and _code(commit) == "OFFSETS_FAILED", commit.text
        # ... reads and produce go on.
        reading = client.get(
            f"/v1/groups/m/topics/{TOPIC}/records",
            params={"member_id": "m1", "generation": generation, "limit": 2},
        )
        assert reading.status_code == 200
        assert [r["offset"] for r in reading.json()["records"]] == [0, 1]
        produced = client.post(f"/v1/topics/{TOPIC}/records", json={"records": [{"value": 10}]})
        assert produced.status_code == 200
        client.close()
        broker.stop()  # a clean stop undoes nothing by itself: the next open does
        broker.start()
        with httpx.Client(base_url=broker.url, timeout=30) as client:
            assert _consume(client).json()["offset"] == 3
            joined = client.post("/v1/groups/m/join", json={"topic": TOPIC, "member_id": "m1"})
            records = client.get(
                f"/v1/groups/m/topics/{TOPIC}/records",
                params={"member_id": "m1", "generation": joined.json()["generation"]},
            )
            assert [r["offset"] for r in records.json()["records"]][:1] == [0]
    finally:
        broker.kill()


def _strace_can_attach() -> str | None:
    if shutil.which("strace") is None:
        return "strace is not installed"
    probe = subprocess.Popen(["sleep", "5"])
    try:
        tried = subprocess.run(
            ["strace", "-p", str(probe.pid), "-o", "/dev/null", "-e", "trace=none"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None  # attached, and traced until the probe ended
    finally:
        probe.kill()
        probe.wait()
    message = tried.stderr.decode(errors="replace")
    if "Operation not permitted" in message:
        return "strace cannot attach here (ptrace not permitted): " + message.strip()
    return None


def test_a_real_fsync_failure_of_the_wal_is_undone_after_kill_9(data_dir: Path) -> None:
    reason = _strace_can_attach()
    if reason is not None:
        pytest.skip(f"NOT RUN: {reason}; the wrapped-connection tests above cover the same path")
    broker = BrokerProcess(data_dir)
    tracer: subprocess.Popen[bytes] | None = None
    try:
        client = _start_with_records(broker)
        assert broker.process is not None
        wal = data_dir / "offsets.sqlite3-wal"
        tracer = subprocess.Popen(
            # Every thread of the broker; only fdatasync calls on the WAL, each failing.
            [
                "strace",
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-p",
                str(broker.process.pid),
                "-P",
                str(wal),
                "-e",
                "trace=fdatasync",
                "-e",
                "inject=fdatasync:error=EIO",
            ],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # attaching to every thread takes a moment
        refused = _consume(client)
        assert refused.status_code == 503, refused.text
        tracer.terminate()
        tracer.wait(10)
        client.close()
        broker.kill()
        broker.start()
        with httpx.Client(base_url=broker.url, timeout=30) as client:
            answer = _consume(client)
            assert answer.status_code == 200 and answer.json()["offset"] == 3, (
                f"the refused commit came back: {answer.text}"
            )
        assert _code(refused) == "OFFSETS_FAILED", refused.text
    finally:
        if tracer is not None and tracer.poll() is None:
            tracer.kill()
        broker.kill()
