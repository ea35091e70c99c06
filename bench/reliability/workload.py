"""Producer and group-consumer threads that record every outcome in a :class:`Ledger`.

They talk plain HTTP (httpx, no client-side retries) so that the ledger knows
exactly which requests reached an answer:

* a connection that could not be opened sent nothing: the same ids are tried
  again and nothing is uncertain;
* an HTTP answer is a known outcome (200 acknowledged, anything else refused);
* any other transport error (reset, timeout, broker killed mid-request) is an
  *unknown* outcome: the ids are retried and may legitimately end up stored twice.

Consumers fetch with ``commit=false`` and commit what they processed; all
commits of one workload go through one lock, so at any moment at most one
commit is in flight and a crash leaves an exact set of allowed committed values.
A consumer whose request failed rejoins under a new member id: the broker
advances a member's positions when it serves a fetch, so a fetch whose answer
was lost would otherwise skip records.

Threads: one per producer and consumer, each with its own HTTP connection.
``stop_producing`` ends the producers (each settles its pending batch first),
``finish`` ends everything; each thread stops within one request timeout.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field

import httpx
from bench.reliability.ledger import Ledger

IDLE_BACKOFF_S = 0.05


@dataclass
class WorkloadStats:
    produce_requests: int = 0
    produce_refused: int = 0
    produce_unknown: int = 0
    connect_failures: int = 0
    fetched: int = 0
    commits: int = 0
    commit_unknown: int = 0
    delivered: set[str] = field(default_factory=set)


class Workload:
    """``producers`` producer threads and ``consumers`` members of one group on one topic."""

    def __init__(
        self,
        base_url: str,
        topic: str,
        ledger: Ledger,
        *,
        producers: int = 4,
        consumers: int = 2,
        group: str = "reliability",
        max_batch: int = 5,
        timeout: float = 5.0,
        token: str | None = None,
        records_per_second: float | None = None,
        seed: int = 0,
    ) -> None:
        self.base_url = base_url
        self.topic = topic
        self.group = group
        self.ledger = ledger
        self.max_batch = max_batch
        self.timeout = timeout
        self.records_per_second = records_per_second
        self._next_send = time.monotonic()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.stats = WorkloadStats()
        self.stop = threading.Event()
        self.producers_stop = threading.Event()
        self.commit_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._random = random.Random(seed)
        self._producers = [
            threading.Thread(target=self._produce, args=(n,), name=f"producer-{n}", daemon=True)
            for n in range(producers)
        ]
        self._threads = self._producers + [
            threading.Thread(target=self._consume, args=(n,), name=f"consumer-{n}", daemon=True)
            for n in range(consumers)
        ]

    def start(self) -> Workload:
        for thread in self._threads:
            thread.start()
        return self

    def stop_producing(self, timeout: float = 30.0) -> None:
        """Stop the producers (each settles its last batch first); consumers carry on."""
        self.producers_stop.set()
        self._join(self._producers, timeout)

    def finish(self, timeout: float = 30.0) -> None:
        """Stop every thread and wait for it (each ends within one request timeout)."""
        self.producers_stop.set()
        self.stop.set()
        self._join(self._threads, timeout)

    @staticmethod
    def _join(threads: list[threading.Thread], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.1))
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            raise RuntimeError(f"workload threads did not stop: {alive}")

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=self.timeout)

    # ----------------------------------------------------------------- producing

    def _produce(self, number: int) -> None:
        sizes = random.Random(self._random.random())
        sequence = itertools.count()
        with self._client() as client:
            pending: list[str] = []
            # A batch whose outcome is not settled yet is finished even after the
            # stop, so that the ledger ends with as few unknown outcomes as possible.
            while pending or not (self.stop.is_set() or self.producers_stop.is_set()):
                if self.stop.is_set() and pending:
                    break
                if not pending:
                    count = sizes.randint(1, self.max_batch)
                    pending = [f"p{number}-{next(sequence)}" for _ in range(count)]
                self._pace(len(pending))
                if self._produce_once(client, pending):
                    pending = []

    def _pace(self, records: int) -> None:
        """Hold the producers together to ``records_per_second`` (a shared schedule)."""
        if self.records_per_second is None:
            return
        with self._stats_lock:
            now = time.monotonic()
            slot = max(now, self._next_send)
            self._next_send = slot + records / self.records_per_second
        if slot > now:
            time.sleep(slot - now)

    def _produce_once(self, client: httpx.Client, ids: list[str]) -> bool:
        """One attempt; True when the outcome is settled and new ids may follow."""
        self.ledger.sent(ids)
        body = {"records": [{"value": {"id": message_id}} for message_id in ids]}
        try:
            response = client.post(f"/v1/topics/{self.topic}/records", json=body)
        except httpx.ConnectError:
            self._count(connect_failures=1)
            time.sleep(IDLE_BACKOFF_S)
            return False
        except httpx.TransportError:
            self.ledger.unknown(ids)
            self._count(produce_unknown=1)
            time.sleep(IDLE_BACKOFF_S)
            return False
        self._count(produce_requests=1)
        if response.status_code != 200:
            self._count(produce_refused=1)
            time.sleep(IDLE_BACKOFF_S)
            return False
        positions = [(o["partition"], o["offset"]) for o in response.json()["offsets"]]
        self.ledger.acknowledged(ids, positions)
        return True

    # ----------------------------------------------------------------- consuming

    def _consume(self, number: int) -> None:
        generation = itertools.count()
        member = f"member-{number}-{next(generation)}"
        # What this member has read and not yet had acknowledged as committed.
        pending: dict[tuple[str, int], int] = {}
        with self._client() as client:
            while not self.stop.is_set():
                try:
                    self._consume_once(client, member, pending)
                except httpx.TransportError:
                    # The fetch may have been served with its answer lost: the broker
                    # then moved this member's positions past records never seen here.
                    # A new member starts at the committed offsets (at-least-once).
                    self._leave(client, member)
                    member = f"member-{number}-{next(generation)}"
                    pending = {}
                    time.sleep(IDLE_BACKOFF_S)

    def _leave(self, client: httpx.Client, member: str) -> None:
        """Best effort: a member that cannot leave expires after the session timeout."""
        try:
            client.post(
                f"/v1/groups/{self.group}/leave", json={"topic": self.topic, "member_id": member}
            )
        except httpx.TransportError:
            self._count(connect_failures=1)

    def _consume_once(
        self, client: httpx.Client, member: str, pending: dict[tuple[str, int], int]
    ) -> None:
        response = client.get(
            f"/v1/groups/{self.group}/topics/{self.topic}/records",
            params={"member_id": member, "limit": 200, "wait_ms": 100},
        )
        if response.status_code != 200:
            time.sleep(IDLE_BACKOFF_S)
            return
        body = response.json()
        ids = {r["value"]["id"] for r in body["records"] if isinstance(r.get("value"), dict)}
        if body["records"]:
            with self._stats_lock:
                self.stats.fetched += len(body["records"])
                self.stats.delivered.update(ids)
        owned = set(body["assignment"])
        for key in [k for k in pending if k[1] not in owned]:
            # Moved to another member: it reads from the committed offset, and
            # committing this member's position could move that back.
            del pending[key]
        touched = {r["partition"] for r in body["records"]}
        for position in body["positions"]:
            key = (self.topic, position["partition"])
            if position["partition"] in touched or key in pending:
                pending[key] = position["offset"]
        if pending and self.commit(client, member, body["generation"], dict(pending)):
            pending.clear()

    def commit(
        self,
        client: httpx.Client,
        member: str,
        generation: int,
        offsets: dict[tuple[str, int], int],
    ) -> bool:
        """Commit ``offsets`` (next offsets to read), recording the outcome in the ledger.

        Returns whether the broker acknowledged it. A refusal for a generation
        that is over (409) is no acknowledgement: the member commits its
        positions again with its next fetch's generation.
        """
        payload = {
            "member_id": member,
            "generation": generation,
            "offsets": [{"topic": t, "partition": p, "offset": o} for (t, p), o in offsets.items()],
        }
        with self.commit_lock:
            try:
                response = client.post(f"/v1/groups/{self.group}/commit", json=payload)
            except httpx.ConnectError:
                return False
            except httpx.TransportError:
                self.ledger.commit_unknown(self.group, offsets)
                self._count(commit_unknown=1)
                raise
            if response.status_code == 200:
                self.ledger.commit_acknowledged(self.group, offsets)
                self._count(commits=1)
                return True
            return False

    # ----------------------------------------------------------------- draining

    def drain(self, partitions: int, timeout: float = 60.0) -> None:
        """Keep the consumers running until the group has committed every partition's end."""
        deadline = time.monotonic() + timeout
        with self._client() as client:
            while time.monotonic() < deadline:
                info = client.get(f"/v1/groups/{self.group}").json()
                lags = [entry["lag"] for entry in info.get("offsets", [])]
                if len(lags) == partitions and not any(lags):
                    return
                time.sleep(0.2)
        raise TimeoutError(f"group {self.group} did not catch up within {timeout}s")
