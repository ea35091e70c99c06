"""Run a command that must not outlive the process that started it.

``python -m minimq.cli.orphan_guard PARENT_PID -- COMMAND [ARG...]`` is the
tiny wrapper ``minimq up`` puts in front of every service it starts, so that
even a ``kill -9`` of ``minimq up`` leaves no broker, producer or UI behind.

Two mechanisms, chosen by ``--mode``:

``prctl`` (the default on Linux)
    ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, then ``exec`` the command. The
    kernel sends SIGTERM to the command when the thread that forked it exits,
    and the setting survives ``exec``, so no extra process stays around. It is
    set here, in a fresh interpreter, rather than in ``Popen(preexec_fn=...)``
    because ``preexec_fn`` is unsafe in a parent that runs threads (the
    supervisor's log readers). SIGTERM rather than SIGKILL so that the broker
    still closes its log cleanly.

``poll`` (the default elsewhere: macOS, the BSDs)
    The wrapper stays as the command's parent: it forwards SIGTERM and SIGINT
    to it, checks twice a second whether its own parent is still
    ``PARENT_PID``, and if not, stops the command (SIGTERM, then SIGKILL
    after a grace period) and exits.

Either way the parent may already be gone by the time the wrapper runs (it
could be killed between ``fork`` and ``prctl``), so the wrapper first checks
that ``os.getppid()`` is still ``PARENT_PID`` and exits with status 1 if not.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

PR_SET_PDEATHSIG = 1
POLL_INTERVAL_SECONDS = 0.5
STOP_GRACE_SECONDS = 5.0
PARENT_GONE_EXIT_CODE = 1


def default_mode() -> str:
    return "prctl" if sys.platform.startswith("linux") else "poll"


def set_parent_death_signal(signum: int) -> None:
    """Ask the Linux kernel to send ``signum`` to this process when its parent dies."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(errno)}")


def watch_parent(parent_pid: int, command: Sequence[str]) -> int:
    """Run ``command`` as a child and stop it as soon as ``parent_pid`` is no longer our parent."""
    child = subprocess.Popen(list(command))

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while child.poll() is None:
        if os.getppid() != parent_pid:
            child.terminate()
            try:
                child.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return PARENT_GONE_EXIT_CODE
        time.sleep(POLL_INTERVAL_SECONDS)
    return child.returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minimq.cli.orphan_guard",
        description="Run COMMAND so that it stops when process PARENT_PID exits.",
    )
    parser.add_argument("--mode", choices=("prctl", "poll"), default=default_mode())
    parser.add_argument("parent_pid", type=int)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    if args.mode == "prctl":
        set_parent_death_signal(signal.SIGTERM)
    # Checked after prctl: had the parent died before it, the signal would never come.
    if os.getppid() != args.parent_pid:
        return PARENT_GONE_EXIT_CODE
    if args.mode == "prctl":
        os.execvp(command[0], command)
    return watch_parent(args.parent_pid, command)


if __name__ == "__main__":
    sys.exit(main())
