"""Simulated power loss: only fsynced bytes and directory entries survive; then recovery."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from bench.reliability.power_loss import FsyncRecorder, build_image, run_power_loss_cycles

from minimq.core.topic_config import FsyncPolicy
from tests.reliability.conftest import FULL, scale

INTERVAL_MS = 200
# Timer lateness and the fsync itself on a loaded 2-core machine; the full run is stricter.
SLACK_MS = 300.0 if FULL else 1500.0


async def test_fsync_always_loses_nothing_acknowledged(data_dir: Path) -> None:
    result = await run_power_loss_cycles(data_dir, FsyncPolicy(), scale(4, 50), seed=3)
    print(result.summary())
    assert result.ok, result.summary()
    assert result.lost_acknowledged == 0
    assert result.acknowledged > 0 and result.recovered_records > 0


async def test_fsync_interval_loses_only_the_last_interval(data_dir: Path) -> None:
    policy = FsyncPolicy.parse(f"interval:{INTERVAL_MS}")
    result = await run_power_loss_cycles(data_dir, policy, scale(4, 50), seed=5, slack_ms=SLACK_MS)
    print(result.summary())
    assert result.ok, result.summary()
    assert result.max_lost_age_ms <= INTERVAL_MS + SLACK_MS


async def test_fsync_never_keeps_every_partition_a_prefix(data_dir: Path) -> None:
    result = await run_power_loss_cycles(data_dir, FsyncPolicy(mode="never"), scale(3, 30), seed=9)
    print(result.summary())
    assert result.ok, result.summary()
    # The simulation really drops unsynced data: without fsync, acknowledged appends go.
    assert result.lost_acknowledged > 0


@pytest.mark.parametrize("torn", [False, True])
def test_image_keeps_only_fsynced_content_and_entries(tmp_path: Path, torn: bool) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "old").write_bytes(b"kept")
    recorder = FsyncRecorder(root)
    with recorder.installed():
        synced = os.open(root / "synced", os.O_WRONLY | os.O_CREAT)
        os.write(synced, b"durable")
        os.fsync(synced)
        os.write(synced, b"-unsynced")
        os.close(synced)
        dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dir_fd)
        (root / "listed-unsynced").write_bytes(b"x")
        (root / "old").rename(root / "renamed")
        (root / "sub").mkdir()
        os.fsync(dir_fd)
        os.close(dir_fd)
        (root / "sub" / "lost").write_bytes(b"y")
        state = recorder.cut()
    image = tmp_path / "image"
    build_image(state, image, random.Random(1), torn=torn)
    assert sorted(p.name for p in image.iterdir()) == [
        "listed-unsynced",
        "renamed",
        "sub",
        "synced",
    ]
    assert (image / "renamed").read_bytes() == b"kept"
    assert (image / "listed-unsynced").read_bytes() == b""  # entry synced, content never
    assert list((image / "sub").iterdir()) == []
    content = (image / "synced").read_bytes()
    if torn:
        assert b"durable-unsynced".startswith(content) and content.startswith(b"durable")
    else:
        assert content == b"durable"
