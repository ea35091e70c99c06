"""Start-up edge cases with real broker processes: full disk, read-only or foreign data dirs, links.

Each case used to end in a traceback (or worse); each must now start and
serve, or exit at once with status 1 and one line saying what is wrong.

Some need root (mounts, another user).  Where the machine does not allow
them, the test is skipped with the reason, never passed:

* full disk: a 16 MiB tmpfs mounted on a temporary directory;
* read-only: a read-only bind mount of the data directory (as root); without
  root, a data directory of mode 0555 instead;
* another user's directory: root runs the broker as ``nobody`` with
  ``setpriv`` on a root-owned directory of mode 0700 (root itself would pass
  the permission check).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.support.processes import BrokerProcess, free_port

IS_ROOT = os.geteuid() == 0
NOBODY = 65534


def exits_with_one_line(data_dir: Path, prefix: Sequence[str] = (), cwd: Path | None = None) -> str:
    """Run a broker that must refuse to start: exit status 1, no traceback; its output."""
    command = [
        *prefix,
        sys.executable,
        "-m",
        "minimq",
        "broker",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--data-dir",
        str(data_dir),
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=60, cwd=cwd, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the broker did not exit: it started on {data_dir} after all")
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "cannot open data directory" in errors[0], output
    return errors[0]


def prepared(data_dir: Path) -> Path:
    """A data directory a broker has run on (lock file, a topic, a clean-shutdown marker)."""
    with BrokerProcess(data_dir) as broker:
        httpx.post(f"{broker.url}/produce", json={"topic": "t", "message": 1}).raise_for_status()
    return data_dir


@contextlib.contextmanager
def mounted(*mount_args: str, target: Path) -> Iterator[None]:
    if not IS_ROOT:
        pytest.skip(f"needs root to mount {target} (this test runs as uid {os.geteuid()})")
    done = subprocess.run(["mount", *mount_args, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(mount_args)} failed here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_read_only_data_dir_is_a_one_line_error(tmp_path: Path) -> None:
    data_dir = prepared(tmp_path / "data")
    if IS_ROOT:
        with mounted("--bind", str(data_dir), target=data_dir):
            remount = ["mount", "-o", "remount,ro,bind", str(data_dir)]
            subprocess.run(remount, check=True)
            line = exits_with_one_line(data_dir)
            assert "Read-only file system" in line, line
    else:
        data_dir.chmod(0o555)
        try:
            line = exits_with_one_line(data_dir)
        finally:
            data_dir.chmod(0o755)
        assert "Permission denied" in line, line


@pytest.mark.parametrize("mode", [0o700, 0o755], ids=["0700", "0755-not-writable"])
def test_another_users_data_dir_is_a_one_line_error(mode: int) -> None:
    if not IS_ROOT:
        pytest.skip("needs root, to make a directory owned by another user than the broker's")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux) to run the broker as another user")
    as_nobody = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run(
        [*as_nobody, sys.executable, "-c", "import minimq"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        # A checkout under a directory only root may enter (mktemp -d makes 0700 ones).
        pytest.skip(f"NOT RUN: user nobody cannot import this checkout: {probe.stderr[-200:]!r}")
    # Under /tmp, not pytest's tmp_path: nobody must be able to reach the directory.
    parent = Path(tempfile.mkdtemp(prefix="minimq-foreign-"))
    try:
        parent.chmod(0o755)
        data_dir = prepared(parent / "data")
        data_dir.chmod(mode)
        line = exits_with_one_line(
            data_dir,
            [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"],
            cwd=parent,
        )
        assert "Permission denied" in line, line
    finally:
        shutil.rmtree(parent)


def test_symlinks_in_topics_neither_crash_the_first_start_nor_make_delete_a_500(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with BrokerProcess(outside / "data") as other:  # a real topic, outside the data dir
        httpx.post(f"{other.url}/produce", json={"topic": "o", "message": 1}).raise_for_status()
    empty = tmp_path / "empty"
    empty.mkdir()
    data_dir = tmp_path / "data"
    (data_dir / "topics").mkdir(parents=True)
    (data_dir / "topics" / "linked").symlink_to(outside / "data" / "topics" / "o")
    (data_dir / "topics" / "linked-empty").symlink_to(empty)
    before = sorted((p, p.stat().st_size) for p in outside.rglob("*") if p.is_file())
    with BrokerProcess(data_dir) as broker, httpx.Client(base_url=broker.url) as client:
        assert client.get("/v1/topics").json()["topics"] == []
        deleted = client.delete("/v1/topics/linked")
        assert deleted.status_code == 404, deleted.text
        assert client.post("/produce", json={"topic": "linked", "message": 2}).is_success
        assert "MOVED ASIDE" in broker.log()
    assert sorted((p, p.stat().st_size) for p in outside.rglob("*") if p.is_file()) == before
    assert not (data_dir / "topics" / "linked").is_symlink()
    assert sorted(p.name.split(".")[0] for p in (data_dir / "unrecognized").iterdir()) == [
        "linked",
        "linked-empty",
    ]


def fill(path: Path) -> None:
    """Write ``path`` until the file system has not a byte left."""
    with path.open("wb", buffering=0) as filler:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * size)


def read_ids(client: httpx.Client) -> list[str]:
    """Every record id of topic ``t``, partition 0, from offset 0."""
    ids: list[str] = []
    while True:
        answer = client.get(
            "/v1/topics/t/partitions/0/records",
            params={"offset": len(ids), "limit": 1000, "max_bytes": 8 << 20},
        )
        assert answer.status_code == 200, answer.text
        records = answer.json()["records"]
        if not records:
            return ids
        ids.extend(r["value"]["id"] for r in records)


def test_a_full_disk_after_kill_9_still_starts_and_serves_reads(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=16m", "tmpfs", target=small):
        broker = BrokerProcess(small / "data")
        broker.log_path = tmp_path / "broker.log"  # not on the full disk
        acknowledged: list[str] = []
        reserve = small / "reserve"  # freed at the end, for "space comes back"
        reserve.write_bytes(b"\0" * (1 << 20))
        try:
            broker.start()
            with httpx.Client(base_url=broker.url, timeout=30) as client:
                for number in range(10_000):
                    ids = [f"{number}-{i}" for i in range(20)]
                    answer = client.post(
                        "/v1/topics/t/records",
                        json={"records": [{"value": {"id": i, "pad": "x" * 2000}} for i in ids]},
                    )
                    if answer.status_code == 507:
                        break
                    assert answer.status_code == 200, answer.text
                    acknowledged.extend(ids)
                else:
                    pytest.fail("the 16 MiB disk never filled up")
            broker.kill()
            filler = small / "filler"
            fill(filler)
            with pytest.raises(OSError) as full:
                (small / "probe").write_bytes(b"x")
            assert full.value.errno == errno.ENOSPC

            broker.start()  # recovery rebuilds the active segment's index: in memory
            assert "SERVING FROM AN IN-MEMORY INDEX" in broker.log()
            with httpx.Client(base_url=broker.url, timeout=30) as client:
                assert read_ids(client) == acknowledged
                # Larger than the slack in the segment's last page: needs new space.
                big = {"records": [{"value": {"id": "big", "pad": "x" * 65536}}]}
                refused = client.post("/v1/topics/t/records", json=big)
                assert refused.status_code == 507, refused.text
                filler.unlink()
                reserve.unlink()
                again = client.post("/v1/topics/t/records", json=big)
                assert again.status_code == 200, again.text
            broker.stop()
            print(f"\n{len(acknowledged)} acknowledged records, all served after the full start")
        finally:
            broker.kill()
