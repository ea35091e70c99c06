"""kill -9 durability: everything acknowledged before the kill is there after reopening."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from minimq.storage import open_storage

ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(data_dir: Path, mode: str, acknowledgements: int) -> list[str]:
    """Start the child, read ``acknowledgements`` lines, SIGKILL it, return the lines read."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_child", str(data_dir), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    lines: list[str] = []
    try:
        while len(lines) < acknowledgements:
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line.decode().strip())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        stderr = child.stderr.read().decode() if child.stderr else ""
        child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert len(lines) == acknowledgements, stderr
    return lines


async def test_acknowledged_appends_survive_kill_9(data_dir: Path) -> None:
    for round_number in range(2):  # the second round appends after recovering the first
        lines = run_and_kill(data_dir, "append", 300)
        assert not (data_dir / ".clean-shutdown").exists()
        storage = await open_storage(data_dir)
        try:
            log = storage.logs.partition("crash", 0)
            for line in lines:
                base, *values = line.split()
                got = await log.read(int(base), len(values), 1 << 20)
                assert [r.value for r in got] == [v.encode() for v in values], (round_number, line)
        finally:
            await storage.close()


async def test_committed_offsets_survive_kill_9(data_dir: Path) -> None:
    lines = run_and_kill(data_dir, "commit", 100)
    storage = await open_storage(data_dir)
    try:
        committed = await storage.offsets.committed("crash-group")
        assert committed[("crash", 0)] >= int(lines[-1])
        assert committed[("crash", 1)] == committed[("crash", 0)]
    finally:
        await storage.close()
