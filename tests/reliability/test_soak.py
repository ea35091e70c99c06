"""A short run of the soak script (``make soak`` runs it for 5 minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.soak import main


def test_short_soak_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--minutes", "0.25", "--sample-s", "3", "--calibrate-s", "2",
         "--data-dir", str(tmp_path / "data")]
    )  # fmt: skip
    output = capsys.readouterr().out
    print(output)
    assert code == 0, output
    assert "PASS" in output and "0 with unknown outcome" in output
