"""``make docker-check`` never counts a machine without a Docker engine as a pass.

The check itself needs root and an engine and runs in ``.ci/run``; here only
its verdict without one, which any machine can show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "check.py"


def test_without_a_docker_cli_the_check_fails_and_says_not_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(CHECK)],
        env={"PATH": str(tmp_path)},  # no docker, no dockerd
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "NOT RUN: no docker CLI" in result.stdout
    assert "docker-check FAILED: 0 passed, 1 failed" in result.stdout
    assert "engine: none (not a pass)" in result.stdout
