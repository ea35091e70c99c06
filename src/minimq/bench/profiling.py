"""Where MiniMQ spends its time: py-spy samples of the broker and of the benchmark's client.

``py-spy record --format raw`` writes one line per distinct stack,
``frame;frame;...;leaf COUNT``, each frame ``function (file:line)``.
:func:`summarize` folds the lines to function level (the line number dropped)
and ranks functions by *self* share (samples where the function is the leaf)
with their *inclusive* share beside it. py-spy attaches to a running process
by PID (``--nonblocking``: the target is never paused) and stops itself after
``--duration`` seconds; it needs ptrace permission on the target.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

SAMPLES_PER_SECOND = 100
EXIT_GRACE_S = 15.0
_LINE_NUMBER = re.compile(r":\d+\)$")


def py_spy_binary() -> str | None:
    """``py-spy`` next to this interpreter (pip installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass(frozen=True, slots=True)
class FrameShare:
    function: str
    """``name (package/module.py)`` as py-spy names it."""
    self_percent: float
    total_percent: float


def _function(frame: str) -> str:
    """``name (module/path.py:LINE)`` without the line: one entry per function."""
    return _LINE_NUMBER.sub(")", frame.strip())


def summarize(raw: str, limit: int) -> tuple[int, list[FrameShare]]:
    """(samples, top ``limit`` functions by self share) of py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        functions = [_function(frame) for frame in stack.split(";")]
        own[functions[-1]] += count
        for function in set(functions):
            inclusive[function] += count
    if total == 0:
        return 0, []
    top = [
        FrameShare(function, 100 * count / total, 100 * inclusive[function] / total)
        for function, count in own.most_common(limit)
    ]
    return total, top


class Sampler:
    """``with Sampler(pid, seconds) as sampler:`` records while the block runs.

    After the block, ``sampler.raw`` holds py-spy's raw output ("" if py-spy
    failed, e.g. without ptrace permission; ``sampler.error`` then says why).
    """

    def __init__(self, pid: int, seconds: float) -> None:
        binary = py_spy_binary()
        if binary is None:
            raise RuntimeError("py-spy not found (pip install py-spy)")
        self._workdir = Path(tempfile.mkdtemp(prefix="minimq-bench-py-spy-"))
        self._output = self._workdir / "profile.txt"
        self._argv = [
            binary, "record", "--pid", str(pid), "--format", "raw", "--nonblocking",
            "--rate", str(SAMPLES_PER_SECOND), "--duration", str(max(1, round(seconds))),
            "--output", str(self._output),
        ]  # fmt: skip
        self._seconds = seconds
        self._process: subprocess.Popen[bytes] | None = None
        self.raw = ""
        self.error = ""

    def __enter__(self) -> Sampler:
        self._process = subprocess.Popen(
            self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        try:
            if process is not None:
                try:
                    _, stderr = process.communicate(timeout=self._seconds + EXIT_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    _, stderr = process.communicate()
                if process.returncode != 0:
                    self.error = stderr.decode(errors="replace").strip()[-300:]
            if self._output.exists():
                self.raw = self._output.read_text(errors="replace")
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
