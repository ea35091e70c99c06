"""Load generators for the cluster benchmark, one *lane* per process, started together.

A lane moves records of one partition in batches of ``batch`` (1,000):

- ``gateway-produce`` / ``gateway-fetch``: MiniMQ's HTTP API on one gateway, over plain
  aiohttp + orjson with a keep-alive connection (``POST /v1/topics/<t>/records`` with 1,000
  records for one partition; ``GET /v1/topics/<t>/partitions/<p>/records?limit=1000``);
- ``direct-produce`` / ``direct-fetch``: nats-py straight to the cluster, doing what the
  gateway's JetStream backend does for the same call (``minimq/jetstream/partition_log.py``):
  one **atomic batch publish** per 1,000 records (999 core publishes on the partition's
  records subject with ``Nats-Batch-Id`` / ``Nats-Batch-Sequence``, ``Nats-Msg-Id`` on the
  first, ``Mq-Ts`` on each, and the ``Nats-Batch-Commit`` message as a request on the commit
  subject, whose ack is awaited), and one **batch direct get** of 1,000 per read (a request on
  ``$JS.API.DIRECT.GET.<stream>`` answered on a wildcard inbox, ended by the ``204 EOB``
  status), with the same ``max_bytes`` the gateway asks for.

Why processes: the gateway is a process of its own doing the nats-py work; a direct lane
must get a Python process of its own too, or two direct lanes would share one interpreter
while two gateways do not. HTTP lanes run the same way so both sides start identically.
:func:`run_lanes` starts the lanes, waits until every one has connected, then releases them at
once; throughput is every lane's records over the span from the first start to the last end.
Each lane is bounded by its record count and by the time cap, whichever comes first.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import queue
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from minimq.bench.runner import run_async
from minimq.bench.workloads import payload

READY_TIMEOUT_S: Final = 90.0
"""A loaded machine can take long to spawn an interpreter and import aiohttp / nats-py."""
FINISH_GRACE_S: Final = 120.0
"""How long after the time cap a lane may still take to report (its last request in flight)."""
REQUEST_TIMEOUT_S: Final = 60.0
HTTP_FETCH_MAX_BYTES: Final = 1024 * 1024
"""The HTTP fetch's default ``max_bytes``; the gateway asks the server for it plus headroom."""
READ_HEADER_ALLOWANCE: Final = 320
"""Per-record header allowance the gateway adds to ``max_bytes`` (``partition_log``)."""

KINDS: Final = ("gateway-produce", "gateway-fetch", "direct-produce", "direct-fetch")


@dataclass(frozen=True, slots=True)
class Lane:
    """What one lane process does. ``target`` is a gateway URL or comma-separated NATS URLs;
    ``where`` the topic (gateway) or ``stream`` (direct); ``subject`` and ``commit_subject``
    the direct stream's two subjects."""

    kind: str
    target: str
    where: str
    partition: int
    records: int
    time_cap_s: float
    batch: int
    value_bytes: int
    subject: str = ""
    commit_subject: str = ""


@dataclass(frozen=True, slots=True)
class LaneResult:
    lane: int
    """Index of the lane in the list given to :func:`run_lanes`."""
    records: int
    started: float
    ended: float
    cpu_s: float
    """CPU time of the lane's own process (user + system) during the workload."""


@dataclass(frozen=True, slots=True)
class Combined:
    """Every lane of one measurement together: records over the span from the first lane's
    start to the last lane's end."""

    records: int
    seconds: float
    lane_cpu_s: float

    @classmethod
    def of(cls, results: Sequence[LaneResult]) -> Combined:
        span = max(r.ended for r in results) - min(r.started for r in results)
        return cls(sum(r.records for r in results), span, sum(r.cpu_s for r in results))

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def value_json(sequence: int, size: int) -> bytes:
    """The stored bytes of a ``size``-character string value: its JSON text (what HTTP stores)."""
    return json.dumps(payload(sequence, size)).encode()


# -- gateway lanes ---------------------------------------------------------------------------


async def _gateway_produce(lane: Lane, http: Any) -> int:
    import orjson  # noqa: PLC0415 - imported in the lane process only

    records = [
        {"value": payload(i, lane.value_bytes), "partition": lane.partition}
        for i in range(lane.batch)
    ]
    # Encoded once per size: the load generator's own cost stays out of the gateway's figures.
    bodies: dict[int, bytes] = {}
    url = f"{lane.target}/v1/topics/{lane.where}/records"
    headers = {"Content-Type": "application/json"}
    deadline = time.perf_counter() + lane.time_cap_s
    sent = 0
    while sent < lane.records and time.perf_counter() < deadline:
        size = min(lane.batch, lane.records - sent)
        if size not in bodies:
            bodies[size] = orjson.dumps({"records": records[:size]})
        async with http.post(url, data=bodies[size], headers=headers) as r:
            body = await r.read()
            if r.status != 200:
                raise RuntimeError(f"produce to {url}: HTTP {r.status}: {body[:300]!r}")
        sent += size
    return sent


async def _gateway_fetch(lane: Lane, http: Any) -> int:
    import orjson  # noqa: PLC0415 - imported in the lane process only

    url = f"{lane.target}/v1/topics/{lane.where}/partitions/{lane.partition}/records"
    deadline = time.perf_counter() + lane.time_cap_s
    offset = 0
    while offset < lane.records and time.perf_counter() < deadline:
        params = {"offset": offset, "limit": min(lane.batch, lane.records - offset)}
        async with http.get(url, params=params) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"fetch from {url}: HTTP {response.status}: {body[:300]!r}")
        page = orjson.loads(body)
        if not page["records"]:
            raise RuntimeError(f"fetch from {url} at offset {offset}: no records")
        offset = int(page["next_offset"])
    return offset


# -- direct lanes ----------------------------------------------------------------------------


async def _direct_produce(lane: Lane, nc: Any) -> int:
    values = [value_json(i, lane.value_bytes) for i in range(lane.batch)]
    deadline = time.perf_counter() + lane.time_cap_s
    sent = 0
    while sent < lane.records and time.perf_counter() < deadline:
        size = min(lane.batch, lane.records - sent)
        batch_id = uuid.uuid4().hex
        stamp = str(time.time_ns() // 1_000_000)
        for number in range(1, size):
            headers = {
                "Mq-Ts": stamp,
                "Nats-Batch-Id": batch_id,
                "Nats-Batch-Sequence": str(number),
            }
            if number == 1:
                headers["Nats-Msg-Id"] = f"{batch_id}.0"
            await nc.publish(lane.subject, values[number - 1], headers=headers)
        commit = {
            "Mq-Ts": stamp,
            "Nats-Batch-Id": batch_id,
            "Nats-Batch-Sequence": str(size),
            "Nats-Batch-Commit": "1",
        }
        if size == 1:
            commit["Nats-Msg-Id"] = f"{batch_id}.0"
        reply = await nc.request(
            lane.commit_subject, values[size - 1], timeout=REQUEST_TIMEOUT_S, headers=commit
        )
        ack = json.loads(reply.data) if reply.data else {}
        if "error" in ack or "seq" not in ack:
            raise RuntimeError(f"atomic batch to {lane.where} refused: {ack or reply.headers}")
        sent += size
    return sent


class _BatchGets:
    """Batch direct gets over one wildcard inbox, as the gateway's ``DirectReader`` does."""

    def __init__(self, nc: Any) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox()
        self._pending: dict[str, tuple[list[int], asyncio.Future[int]]] = {}
        self._token = 0

    async def start(self) -> None:
        await self._nc.subscribe(f"{self._prefix}.*", cb=self._on_message, pending_msgs_limit=-1)

    async def _on_message(self, msg: Any) -> None:
        entry = self._pending.get(msg.subject.rsplit(".", 1)[-1])
        if entry is None or entry[1].done():
            return
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is not None:
            entry[1].set_result(int(status) if status.isdigit() else 500)
        else:
            entry[0].append(int(headers["Nats-Sequence"]))

    async def get(self, stream: str, first: int, count: int) -> int:
        """How many contiguous messages from sequence ``first`` one replica answered."""
        self._token += 1
        token = str(self._token)
        sequences: list[int] = []
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[token] = (sequences, done)
        request = {
            "seq": first,
            "batch": count,
            "max_bytes": HTTP_FETCH_MAX_BYTES + READ_HEADER_ALLOWANCE * count,
        }
        try:
            await self._nc.publish(
                f"$JS.API.DIRECT.GET.{stream}",
                json.dumps(request).encode(),
                reply=f"{self._prefix}.{token}",
            )
            status = await asyncio.wait_for(done, REQUEST_TIMEOUT_S)
        finally:
            del self._pending[token]
        if status not in (204, 404):
            raise RuntimeError(f"batch direct get on {stream}: status {status}")
        contiguous = 0
        for expected, sequence in enumerate(sequences, start=first):
            if sequence != expected:
                break
            contiguous += 1
        return contiguous


async def _direct_fetch(lane: Lane, nc: Any) -> int:
    gets = _BatchGets(nc)
    await gets.start()
    deadline = time.perf_counter() + lane.time_cap_s
    offset = 0
    while offset < lane.records and time.perf_counter() < deadline:
        got = await gets.get(lane.where, offset + 1, min(lane.batch, lane.records - offset))
        if got == 0:
            raise RuntimeError(f"direct get from {lane.where} at offset {offset}: nothing")
        offset += got
    return offset


# -- the lane process ------------------------------------------------------------------------


async def _lane(index: int, lane: Lane, ready: Any, go: Any) -> LaneResult:
    """Connect, say ready, wait for the start signal, run, report."""
    if lane.kind.startswith("gateway"):
        import aiohttp  # noqa: PLC0415 - imported in the lane process only

        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.get(f"{lane.target}/healthz") as response:
                await response.read()
            return await _released(index, lane, ready, go, http)
    import nats  # noqa: PLC0415 - imported in the lane process only

    nc = await nats.connect(
        servers=lane.target.split(","), connect_timeout=10, max_reconnect_attempts=0
    )
    try:
        return await _released(index, lane, ready, go, nc)
    finally:
        await nc.close()


async def _released(index: int, lane: Lane, ready: Any, go: Any, client: Any) -> LaneResult:
    body = {
        "gateway-produce": _gateway_produce,
        "gateway-fetch": _gateway_fetch,
        "direct-produce": _direct_produce,
        "direct-fetch": _direct_fetch,
    }[lane.kind]
    ready.put(("ready", None))
    if not await asyncio.to_thread(go.wait, READY_TIMEOUT_S):
        raise TimeoutError("no start signal")
    cpu, started = time.process_time(), time.perf_counter()
    records = await body(lane, client)
    return LaneResult(index, records, started, time.perf_counter(), time.process_time() - cpu)


def lane_main(index: int, lane: Lane, ready: Any, results: Any, go: Any) -> None:
    """Entry point of a lane process: its result (or its error) goes to ``results``."""
    try:
        result = run_async(lambda: _lane(index, lane, ready, go))
    except BaseException as exc:  # reported to the parent, which raises it
        ready.put(("error", f"{type(exc).__name__}: {exc}"))
        results.put(("error", f"{lane.kind} lane: {type(exc).__name__}: {exc}"))
        return
    results.put(("ok", result))


def run_lanes(lanes: Sequence[Lane]) -> list[LaneResult]:
    """Run ``lanes`` at the same time, one process each; their results, in ``lanes`` order.

    Raises ``RuntimeError`` when a lane failed, ``TimeoutError`` when one did not connect or
    finish in time; every lane process is gone when this returns or raises.
    """
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=lane_main, args=(index, lane, ready, results, go), daemon=True)
        for index, lane in enumerate(lanes)
    ]
    try:
        for process in processes:
            process.start()
        for _ in lanes:
            status, error = _take(ready, READY_TIMEOUT_S, "a lane to connect")
            if status == "error":
                raise RuntimeError(f"a lane failed to start: {error}")
        go.set()
        budget = max(lane.time_cap_s for lane in lanes) + FINISH_GRACE_S
        outcomes = [_take(results, budget, "a lane to finish") for _ in lanes]
        errors = [str(value) for status, value in outcomes if status == "error"]
        if errors:
            raise RuntimeError("; ".join(errors))
        by_lane = {value.lane: value for _status, value in outcomes}
        finished = [by_lane[index] for index in range(len(lanes))]
        for process in processes:
            process.join(30)
    finally:
        go.set()  # a lane still waiting for the signal ends instead of hanging
        for process in processes:
            if process.is_alive():
                process.kill()
            process.join(10)
        for channel in (ready, results):
            channel.close()
            channel.join_thread()
    return finished


def _take(channel: Any, timeout: float, what: str) -> tuple[str, Any]:
    try:
        item: tuple[str, Any] = channel.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"waited {timeout:.0f} s for {what}") from None
    return item
