"""Group members in subprocesses, and the checker of produced against consumed history.

A member is a real client in its own process (``tests.kafka.group_worker``
for the Python clients, ``kcat -G`` for kcat), so a test can close it
(SIGTERM: the client leaves the group) or kill it (SIGKILL: the broker
notices only when its session times out). Each member's events are read
back as :class:`Event` lists stamped with ``time.monotonic()``, one clock for
every process of the machine.

:func:`check_history` says what is wrong with what the group consumed, given
what was produced:

- a gap: a produced record nobody consumed;
- a wrong record: a consumed (partition, offset) whose key or value is not the
  produced one, or that was never produced;
- a duplicate beyond the uncommitted tail: a record consumed again after a
  commit *past* it had returned (to any member). Records a member consumed
  but had not committed when it lost the partition may come again; nothing
  else may.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTITION_RE = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Event:
    kind: str
    t: float
    fields: dict[str, Any]


@dataclass(frozen=True)
class Produced:
    key: str
    value: Any


def produce_over_http(
    broker_url: str, topic: str, partitions: int, count: int, start: int
) -> dict[tuple[int, int], Produced]:
    """``count`` records spread over the partitions; their (partition, offset) → record."""
    records = [
        {"key": f"k{n}", "value": {"n": n}, "partition": n % partitions}
        for n in range(start, start + count)
    ]
    produced: dict[tuple[int, int], Produced] = {}
    for first in range(0, len(records), 1000):
        chunk = records[first : first + 1000]
        response = httpx.post(
            f"{broker_url}/v1/topics/{topic}/records", json={"records": chunk}, timeout=60
        )
        assert response.status_code == 200, response.text
        for record, place in zip(chunk, response.json()["offsets"], strict=True):
            produced[(place["partition"], place["offset"])] = Produced(
                record["key"], record["value"]
            )
    return produced


class Member:
    """One group member process; subclasses say how its events are read."""

    name: str
    process: subprocess.Popen[bytes]

    def events(self) -> list[Event]:
        raise NotImplementedError

    def stderr(self) -> str:
        raise NotImplementedError

    def assignment(self) -> set[int]:
        """The partitions it owns now: those of its last ``assigned`` not revoked since."""
        owned: set[int] = set()
        for event in self.events():
            if event.kind == "assigned":
                owned = set(event.fields["partitions"])
            elif event.kind == "revoked":
                owned -= set(event.fields["partitions"])
        return owned

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, timeout: float = 60.0) -> None:
        """SIGTERM: the client closes its consumer, which leaves the group."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


class WorkerMember(Member):
    """``tests.kafka.group_worker`` with one of the Python clients; events from its log file."""

    def __init__(
        self, client: str, name: str, bootstrap: str, group: str, topic: str, workdir: Path
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.jsonl"
        self._stderr_path = workdir / f"{name}.stderr"
        argv = [sys.executable, "-m", "tests.kafka.group_worker", client, bootstrap, group, topic]
        with self._stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                [*argv, str(self.log_path)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=REPO_ROOT,
                env=_child_env(),
            )

    def events(self) -> list[Event]:
        if not self.log_path.exists():
            return []
        found = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line being written
                data = json.loads(line)
                found.append(Event(data.pop("event"), data.pop("t"), data))
        return found

    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace")[-4000:]


class KcatMember(Member):
    """``kcat -G``: records from its stdout and assignments from its stderr, stamped here.

    kcat commits by itself (librdkafka's auto-commit of what it printed), so
    its history has no ``committed`` events.
    """

    def __init__(self, name: str, bootstrap: str, group: str, topic: str) -> None:
        argv = [
            "kcat", "-b", bootstrap, "-G", group, topic, "-u",
            "-f", "%p\\t%o\\t%k\\t%s\\n",
            "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000",
            "-X", "max.poll.interval.ms=20000", "-X", "auto.offset.reset=earliest",
            "-X", "auto.commit.interval.ms=200",
        ]  # fmt: skip
        self.name = name
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._stderr_lines: list[str] = []
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env()
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _add(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self._events.append(Event(kind, time.monotonic(), fields))

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            p, o, key, value = raw.decode().rstrip("\n").split("\t", 3)
            self._add("record", p=int(p), o=int(o), key=key, value=json.loads(value))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            with self._lock:
                self._stderr_lines.append(line)
            if "rebalanced" in line and "assigned:" in line:
                self._add("assigned", partitions=sorted(map(int, PARTITION_RE.findall(line))))
            elif "rebalanced" in line and "revoked:" in line:
                self._add("revoked", partitions=sorted(map(int, PARTITION_RE.findall(line))))

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def _drain(self) -> None:
        """After exit: read what is left of its output, then close the pipes."""
        for reader in self._readers:
            reader.join(timeout=30)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def close(self, timeout: float = 60.0) -> None:
        super().close(timeout)
        self._drain()

    def kill(self) -> None:
        super().kill()
        self._drain()

    def stderr(self) -> str:
        with self._lock:
            return "".join(self._stderr_lines)[-4000:]


def wait_for(condition: Callable[[], bool], timeout: float, why: Callable[[], str]) -> None:
    """Poll ``condition`` until true; fail with ``why()`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f}s: {why()}")


def consumed(members: Iterable[Member]) -> set[tuple[int, int]]:
    return {
        (e.fields["p"], e.fields["o"]) for m in members for e in m.events() if e.kind == "record"
    }


@dataclass
class HistoryReport:
    problems: list[str] = field(default_factory=list)
    records_consumed: int = 0
    redelivered: int = 0


def check_history(
    produced: dict[tuple[int, int], Produced], members: Iterable[Member]
) -> HistoryReport:
    report = HistoryReport()
    events = sorted((e for m in members for e in m.events()), key=lambda e: e.t)
    committed: dict[int, int] = {}
    seen: set[tuple[int, int]] = set()
    for event in events:
        if event.kind == "committed":
            for p, offset in event.fields["offsets"].items():
                committed[int(p)] = max(committed.get(int(p), 0), offset)
            continue
        if event.kind != "record":
            continue
        report.records_consumed += 1
        place = (event.fields["p"], event.fields["o"])
        expected = produced.get(place)
        if expected is None:
            report.problems.append(f"consumed {place}, which was never produced")
        elif (event.fields["key"], event.fields["value"]) != (expected.key, expected.value):
            report.problems.append(
                f"{place}: consumed {event.fields['key']!r}={event.fields['value']!r},"
                f" produced {expected.key!r}={expected.value!r}"
            )
        if place in seen:
            report.redelivered += 1
            if committed.get(place[0], 0) > place[1]:
                report.problems.append(
                    f"{place} consumed again after offset {committed[place[0]]} of partition"
                    f" {place[0]} was committed"
                )
        seen.add(place)
    gaps = sorted(set(produced) - seen)
    if gaps:
        report.problems.append(f"{len(gaps)} produced records never consumed: {gaps[:10]}")
    return report
