"""One churn member: a real OS process that consumes the group and logs everything it sees.

    python -m bench.churn.member --url URL[,URL...] --group G --topic T \\
        --mode commit-true|explicit --name m03 --history DIR/m03.jsonl \\
        [--skip-commit-probability 0.3] [--seed 1]

Two ways to consume, one per mode of the run:

* ``commit-true``: joins with ``Client.join_group`` and loops on
  ``Client.group_fetch(..., commit=True)`` carrying its member id and
  generation; the broker commits the new positions before it answers
  (at-most-once).  On :class:`~minimq.errors.MemberFenced` it rejoins and goes
  on, as the error promises that nothing of the refused request happened.
* ``explicit``: a :class:`~minimq.client.Consumer` without auto-commit that
  commits after each poll's records are "processed", but skips that commit
  with ``--skip-commit-probability`` so that rebalances find uncommitted
  records to hand out again (at-least-once).

``NOT_COORDINATOR`` (several gateways: the group's lease is moving between
them, nothing of the request happened) is a refusal like a fenced one: the
member rejoins and goes on.

SIGTERM asks for a clean stop: the member finishes the request in flight,
(explicit mode) commits, leaves the group and exits 0.  SIGKILL and SIGSTOP
come from the driver unannounced; that is the point.

History events (besides ``t``, ``event``, ``member``; see :mod:`.history`):

``start`` pid, mode
``join`` member_id, generation, assignment (explicit mode: the consumer joins
    inside ``poll()``; logged after the poll that ended in a new membership)
``fetch-sent`` seq, member_id, generation, assignment, limit, commit
``fetch-answer`` seq, sent, member_id, generation, assignment, records
    [[partition, offset], ...], positions [[partition, next offset], ...], commit
``fetch-refused`` seq, code (the member rejoins) / ``fetch-unanswered`` seq, error
``commit-sent`` seq, member_id, generation (no offsets: ``Consumer.commit()``
    decides them, and says which only when the broker accepted them)
``commit-ok`` seq, member_id, generation, offsets [[partition, next offset], ...]
``commit-refused`` seq, code / ``commit-unanswered`` seq, error
``leave-sent`` member_id / ``left`` member_id / ``leave-refused`` code
``stop``
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.churn.history import HistoryWriter

from minimq.client import Client, Consumer
from minimq.errors import (
    BrokerUnavailable,
    MemberFenced,
    MiniMQError,
    NotCoordinator,
    UnknownMember,
)

COMMIT_TRUE = "commit-true"
EXPLICIT = "explicit"
MODES = (COMMIT_TRUE, EXPLICIT)

# A refused or unanswered request is retried after this pause, so that a fenced
# member does not spin against a broker that is still rebalancing.
RETRY_PAUSE_S = 0.05


def _pairs(mapping: dict[int, int]) -> list[list[int]]:
    return [[partition, offset] for partition, offset in sorted(mapping.items())]


class ChurnMember:
    """The consuming loop of one member process (see the module docstring)."""

    def __init__(self, args: argparse.Namespace, history: HistoryWriter) -> None:
        self.args = args
        self.history = history
        self.client = Client(args.url, timeout=args.request_timeout_s, retries=0)
        self.stop = threading.Event()
        self.random = random.Random(args.seed)
        self.seq = itertools.count(1)

    def run(self) -> None:
        self.history.write("start", pid=os.getpid(), mode=self.args.mode)
        try:
            if self.args.mode == COMMIT_TRUE:
                self.run_commit_true()
            else:
                self.run_explicit()
        finally:
            self.client.close()
            self.history.write("stop")

    def process(self, records: int) -> None:
        """Pretend to work on the records, so polls and churn interleave."""
        if records:
            time.sleep(self.random.uniform(0, self.args.max_processing_ms / 1000))

    # ----------------------------------------------------------------- commit=true

    def run_commit_true(self) -> None:
        membership: Any = None
        member_id: str | None = None
        while not self.stop.is_set():
            if membership is None:
                membership = self.join(member_id)
                if membership is None:
                    member_id = None
                    continue
                member_id = membership.member_id
            seq = next(self.seq)
            sent = self.history.write(
                "fetch-sent",
                seq=seq,
                member_id=membership.member_id,
                generation=membership.generation,
                assignment=list(membership.assignment),
                limit=self.args.limit,
                commit=True,
            )
            try:
                result = self.client.group_fetch(
                    self.args.group,
                    self.args.topic,
                    member_id=membership.member_id,
                    generation=membership.generation,
                    limit=self.args.limit,
                    wait_ms=self.args.wait_ms,
                    commit=True,
                )
            except (MemberFenced, NotCoordinator) as exc:
                self.history.write("fetch-refused", seq=seq, code=exc.code)
                # An unknown member must come back as a new one; the others rejoin as themselves.
                member_id = None if isinstance(exc, UnknownMember) else membership.member_id
                membership = None
                time.sleep(RETRY_PAUSE_S)
                continue
            except BrokerUnavailable as exc:
                self.history.write("fetch-unanswered", seq=seq, error=str(exc))
                membership, member_id = None, None
                time.sleep(RETRY_PAUSE_S)
                continue
            self.history.write(
                "fetch-answer",
                seq=seq,
                sent=sent,
                member_id=result.member_id,
                generation=result.generation,
                assignment=list(result.assignment),
                records=[[r.partition, r.offset] for r in result.records],
                positions=_pairs(result.positions),
                commit=True,
            )
            self.process(len(result.records))
        if membership is not None:
            self.leave(membership.member_id)

    def join(self, member_id: str | None) -> Any:
        """A new membership, or ``None`` when the broker refused it (try again as new)."""
        try:
            membership = self.client.join_group(
                self.args.group, self.args.topic, member_id=member_id
            )
        except (MemberFenced, NotCoordinator, BrokerUnavailable) as exc:
            self.history.write("join-refused", member_id=member_id, code=exc.code)
            time.sleep(RETRY_PAUSE_S)
            return None
        self.history.write(
            "join",
            member_id=membership.member_id,
            generation=membership.generation,
            assignment=list(membership.assignment),
        )
        return membership

    def leave(self, member_id: str) -> None:
        self.history.write("leave-sent", member_id=member_id)
        try:
            self.client.leave_group(self.args.group, self.args.topic, member_id)
        except MiniMQError as exc:
            self.history.write("leave-refused", member_id=member_id, code=exc.code)
        else:
            self.history.write("left", member_id=member_id)

    # ----------------------------------------------------------------- explicit

    def run_explicit(self) -> None:
        consumer = Consumer(
            self.client,
            self.args.group,
            self.args.topic,
            heartbeat_interval_ms=self.args.heartbeat_interval_ms,
            auto_commit_interval_ms=None,
            max_poll_records=self.args.limit,
        )
        seen: tuple[str, int] | None = None
        try:
            while not self.stop.is_set():
                seq = next(self.seq)
                sent = self.history.write(
                    "fetch-sent",
                    seq=seq,
                    member_id=consumer.member_id,
                    generation=consumer.generation,
                    assignment=list(consumer.assignment),
                    limit=self.args.limit,
                    commit=False,
                )
                # A fenced poll returns no records; the consumer rejoins by itself.
                try:
                    records = consumer.poll(self.args.wait_ms)
                except (MemberFenced, NotCoordinator) as exc:
                    self.history.write("fetch-refused", seq=seq, code=exc.code)
                    time.sleep(RETRY_PAUSE_S)
                    continue
                except BrokerUnavailable as exc:
                    self.history.write("fetch-unanswered", seq=seq, error=str(exc))
                    time.sleep(RETRY_PAUSE_S)
                    continue
                # The consumer rejoins inside poll(): log each membership it ends up in.
                if seen != (consumer.member_id, consumer.generation):
                    seen = (consumer.member_id, consumer.generation)
                    self.history.write(
                        "join",
                        member_id=consumer.member_id,
                        generation=consumer.generation,
                        assignment=list(consumer.assignment),
                    )
                self.history.write(
                    "fetch-answer",
                    seq=seq,
                    sent=sent,
                    member_id=consumer.member_id,
                    # The generation these records were handed out in.
                    generation=consumer.last_poll_generation,
                    assignment=list(consumer.assignment),
                    records=[[r.partition, r.offset] for r in records],
                    positions=[],
                    commit=False,
                )
                self.process(len(records))
                if records and self.random.random() >= self.args.skip_commit_probability:
                    self.commit(consumer)
            self.commit(consumer)
            self.history.write("leave-sent", member_id=consumer.member_id)
        finally:
            try:
                consumer.close()
            except MiniMQError as exc:
                self.history.write("leave-refused", member_id=consumer.member_id, code=exc.code)
            else:
                if self.stop.is_set():
                    self.history.write("left", member_id=consumer.member_id)

    def commit(self, consumer: Consumer) -> None:
        seq = next(self.seq)
        member_id, generation = consumer.member_id, consumer.generation
        self.history.write("commit-sent", seq=seq, member_id=member_id, generation=generation)
        try:
            offsets = consumer.commit()
        except (MemberFenced, NotCoordinator) as exc:
            self.history.write("commit-refused", seq=seq, code=exc.code)
        except BrokerUnavailable as exc:
            self.history.write("commit-unanswered", seq=seq, error=str(exc))
        else:
            self.history.write(
                "commit-ok",
                seq=seq,
                member_id=member_id,
                generation=generation,
                offsets=_pairs(offsets),
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="broker URL(s), comma-separated")
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-commit-probability", type=float, default=0.3)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--wait-ms", type=int, default=200)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=400)
    parser.add_argument("--max-processing-ms", type=int, default=20)
    parser.add_argument("--request-timeout-s", type=float, default=10.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with HistoryWriter(args.history, member=args.name) as history:
        member = ChurnMember(args, history)
        # Only sets a flag: the request in flight completes and is logged first.
        # Installed before ``start`` is logged: the driver waits for that line.
        signal.signal(signal.SIGTERM, lambda *_: member.stop.set())
        member.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
