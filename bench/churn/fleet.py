"""The member processes of a run: started, signalled and reaped by PID, each step logged.

:class:`MemberFleet` starts ``python -m bench.churn.member`` processes and
applies the schedule's actions to them with signals, writing one driver
history line per action (``spawn``, ``leave``, ``kill``, ``pause``,
``resume``, ``exited``; ``skipped`` with the ``action`` when the member had
already exited) with the member's name and PID (``spawn`` also names the
broker ``urls`` the member was given, in the order it tries them).  The
checker reads these lines to tell why a record was delivered twice (its
earlier holder was killed, or paused) and whether an unanswered commit=true
fetch belonged to a member that was killed.

Every process is a child of this one and is only ever signalled through its
own ``Popen`` (its PID); :meth:`MemberFleet.kill_all` is the last resort of
the run's ``finally`` and leaves no child behind.

With several brokers (gateways over one cluster) every member is given all of
their URLs, each member starting at the next one (:func:`~.brokers.urls_for`):
members are spread over the gateways, and the client's failover still has
somewhere to go.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.churn.brokers import urls_for
from bench.churn.history import HistoryWriter

# The repository root: member processes import ``bench`` from there.
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class MemberProcess:
    name: str
    process: subprocess.Popen[bytes]
    paused: bool = False
    told_to_stop: bool = False  # SIGTERM or SIGKILL sent: an exit is expected
    # Its ``exited`` line was written.  Not ``returncode``: any poll() sets that.
    exit_logged: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


class MemberFleet:
    """Member processes of one run (driven from one thread; not thread-safe)."""

    def __init__(
        self,
        run_dir: Path,
        driver: HistoryWriter,
        urls: Sequence[str],
        member_args: list[str],
        *,
        seed: int = 0,
    ) -> None:
        self.members_dir = run_dir / "members"
        self.members_dir.mkdir(parents=True, exist_ok=True)
        self.driver = driver
        self.urls = list(urls)
        self.member_args = member_args
        self.seed = seed
        self.members: dict[str, MemberProcess] = {}
        self.unexpected_exits: list[str] = []

    def spawn(self, name: str, extra_args: tuple[str, ...] = ()) -> None:
        log = (self.members_dir / f"{name}.log").open("ab")
        urls = urls_for(len(self.members), self.urls)
        command = [
            sys.executable,
            "-m",
            "bench.churn.member",
            "--url",
            ",".join(urls),
            *self.member_args,
            "--name",
            name,
            "--history",
            str(self.members_dir / f"{name}.jsonl"),
            "--seed",
            f"{self.seed}{len(self.members):03d}",
            *extra_args,
        ]
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.members[name] = MemberProcess(name, process)
        self.driver.write("spawn", member=name, pid=process.pid, urls=urls)

    def leave(self, name: str) -> None:
        """Ask for a clean stop (SIGTERM); the member commits, leaves and exits by itself."""
        member = self.members[name]
        self._wait_started(member)
        if self._exited_before(member, "leave"):
            return
        member.told_to_stop = True
        self._signal(member, signal.SIGTERM)
        self.driver.write("leave", member=name, pid=member.pid)

    def kill(self, name: str) -> None:
        member = self.members[name]
        self._wait_started(member)
        if self._exited_before(member, "kill"):
            return
        member.told_to_stop = True
        self._signal(member, signal.SIGKILL)
        self.driver.write("kill", member=name, pid=member.pid)
        member.process.wait()
        self._exited(member)

    def pause(self, name: str) -> None:
        member = self.members[name]
        self._wait_started(member)
        if self._exited_before(member, "pause"):
            return
        self._signal(member, signal.SIGSTOP)
        member.paused = True
        self.driver.write("pause", member=name, pid=member.pid)

    def resume(self, name: str) -> None:
        member = self.members[name]
        if self._exited_before(member, "resume"):
            return
        self._signal(member, signal.SIGCONT)
        member.paused = False
        self.driver.write("resume", member=name, pid=member.pid)

    def running(self) -> list[str]:
        return [name for name, m in self.members.items() if m.process.returncode is None]

    def reap(self) -> None:
        """Log every member that exited since the last call."""
        for member in self.members.values():
            if not member.exit_logged and member.process.poll() is not None:
                self._exited(member)

    def _exited_before(self, member: MemberProcess, action: str) -> bool:
        """Whether the member already exited: then ``action`` is logged as ``skipped``, not done.

        A member that crashed stays in the precomputed schedule.  Logging a kill or
        a pause of it would count churn that never happened, and a kill would let
        the checker excuse records lost with a fetch the crash left unanswered.
        """
        self.reap()  # logs the exit first, once
        if member.process.returncode is None:
            return False
        self.driver.write("skipped", action=action, member=member.name, pid=member.pid)
        return True

    def _exited(self, member: MemberProcess) -> None:
        member.exit_logged = True
        code = member.process.returncode
        self.driver.write("exited", member=member.name, pid=member.pid, code=code)
        if not member.told_to_stop or (code != 0 and code != -signal.SIGKILL):
            self.unexpected_exits.append(f"{member.name} (pid {member.pid}) exited with {code}")

    def stop_all(self, timeout_s: float) -> None:
        """Wake the paused members, ask every member to stop, SIGKILL the ones that do not."""
        for member in self.members.values():
            if member.process.returncode is None and member.paused:
                self.resume(member.name)
        for name in self.running():
            if not self.members[name].told_to_stop:
                self.leave(name)
        deadline = time.monotonic() + timeout_s
        while self.running() and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)
        self.reap()
        for name in self.running():
            self.unexpected_exits.append(f"{name} did not stop within {timeout_s}s of SIGTERM")
            self.kill(name)

    def kill_all(self) -> None:
        """SIGKILL and reap every member still running (the run's ``finally``)."""
        for member in self.members.values():
            if member.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    member.process.send_signal(signal.SIGCONT)
                    member.process.kill()
                member.process.wait()

    def wait_started(self, timeout_s: float = 10.0) -> None:
        """Until every member has logged ``start`` (or exited)."""
        for member in self.members.values():
            self._wait_started(member, timeout_s)

    def _wait_started(self, member: MemberProcess, timeout_s: float = 10.0) -> None:
        """Until the member logged ``start``: only then is its SIGTERM handler installed.

        A signal before that (a leave, kill or pause right after a join) would
        hit a process that is still importing: a SIGTERM would kill it
        unannounced, and a kill or pause would test nothing.
        """
        history = self.members_dir / f"{member.name}.jsonl"
        deadline = time.monotonic() + timeout_s
        while member.process.poll() is None and time.monotonic() < deadline:
            if history.exists() and b'"start"' in history.read_bytes()[:4096]:
                return
            time.sleep(0.02)

    @staticmethod
    def _signal(member: MemberProcess, signum: signal.Signals) -> None:
        # poll() first: never signal a PID whose process was reaped (it may be reused).
        if member.process.poll() is None:
            member.process.send_signal(signum)
