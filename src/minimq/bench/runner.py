"""Runs the workloads on every peer, ``settings.runs`` times, and collects :class:`Results`.

Order: run 1 of every peer, then run 2 of every peer, and so on, so that
background noise on a shared machine spreads over all brokers instead of
hitting one. Every run starts a fresh server (own temp directory, free port)
and stops it by PID in a ``finally``, Ctrl-C included. The cost-growth test
runs once per broker after that, with ``settings.runs`` rounds of reads per
partition size; with ``profile=True`` py-spy then records MiniMQ and this
process during a few workloads (:data:`PROFILED`).

Concurrency: single-threaded; each server session runs in its own short-lived
event loop (uvloop when installed) so nothing leaks from one broker to the next.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from typing import Any, TypeVar

from tqdm import tqdm

from minimq.bench import kafka_workloads, profiling, rawhttp, workloads
from minimq.bench.cpu import CpuMeter
from minimq.bench.machine import load_average, machine_info
from minimq.bench.peers.base import Durability, Peer, Session
from minimq.bench.peers.process import ServerProcess
from minimq.bench.results import KAFKA_METRICS, Profile, Results, cpu_metric
from minimq.bench.settings import Settings

T = TypeVar("T")

WORKLOADS = (
    "sequential", "batched", "concurrent", "consume", "kafka", "latency", "raw-http", "growth",
)  # fmt: skip
"""Selectable workload names; resources (RSS, disk) are measured after every session."""

MIB = 1024 * 1024
PROFILE_FRAMES = 12
PROFILE_TOPIC = "profile"


async def _with_session(
    connect: Callable[[], Coroutine[Any, Any, Session]],
    body: Callable[[Session, Settings], Coroutine[Any, Any, None]],
    settings: Settings,
) -> None:
    session = await connect()
    try:
        await body(session, settings)
    finally:
        await session.close()


async def _fill_for_consume(session: Session, settings: Settings) -> None:
    await session.create_topic(PROFILE_TOPIC)
    await workloads.bulk_fill(session, PROFILE_TOPIC, 0, settings.messages, settings)


async def _profile_batched(session: Session, settings: Settings) -> None:
    deadline = time.perf_counter() + settings.time_cap_s
    round_ = 0
    while time.perf_counter() < deadline:
        await workloads.produce_batched(session, f"{PROFILE_TOPIC}-{round_}", settings)
        round_ += 1


async def _profile_consume(session: Session, settings: Settings) -> None:
    # Re-read the filled topic from the start until the recording window is over.
    deadline = time.perf_counter() + settings.time_cap_s
    while time.perf_counter() < deadline:
        await session.consume(PROFILE_TOPIC, settings.messages, settings.batch_size, deadline)


async def _profile_concurrent(session: Session, settings: Settings) -> None:
    deadline = time.perf_counter() + settings.time_cap_s
    round_ = 0
    while time.perf_counter() < deadline:
        await workloads.produce_concurrent(session, f"{PROFILE_TOPIC}-{round_}", settings)
        round_ += 1


PROFILED: dict[str, Callable[[Session, Settings], Coroutine[Any, Any, None]]] = {
    "batched produce": _profile_batched,
    "consume": _profile_consume,
    "64 concurrent producers": _profile_concurrent,
}
"""The workloads ``--profile`` records, in report order."""


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (not on Windows), else the standard one."""
    try:
        import uvloop  # noqa: PLC0415 - optional, platform-dependent
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion in a fresh event loop."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(factory())


class Runner:
    """Drives ``peers`` through the ``selected`` workloads; ``run()`` returns the results."""

    def __init__(
        self,
        peers: Iterable[Peer],
        settings: Settings,
        selected: Iterable[str] = WORKLOADS,
        *,
        profile: bool = False,
        show_progress: bool = True,
    ) -> None:
        self.settings = settings
        self.profile = profile
        self.selected = set(selected)
        if "consume" in self.selected:
            self.selected.add("batched")  # consume reads what the batched produce wrote
        self.results = Results(settings)
        self.peers: list[Peer] = []
        for peer in peers:
            reason = peer.unavailable_reason()
            if reason is None:
                self.peers.append(peer)
            else:
                self.results.notes.append(f"{peer.label} skipped: {reason}.")
        self._show_progress = show_progress

    def run(self) -> Results:
        started = time.perf_counter()
        self.results.machine = machine_info()
        for peer in self.peers:
            self.results.versions.update(peer.versions())
            by_broker = self.results.settings_by_level.setdefault(peer.durability.value, {})
            by_broker[peer.broker] = peer.setting
        growth_peers = self._growth_peers()
        profiled = self._profiled_peer()
        with tqdm(
            total=self._step_count(len(growth_peers)) + (len(PROFILED) if profiled else 0),
            desc="bench",
            unit="step",
            disable=not self._show_progress,
        ) as progress:
            for run in range(self.settings.runs):
                for peer in self.peers:
                    what = f"run {run + 1}/{self.settings.runs} {peer.label}"
                    progress.set_description(what)
                    self._guarded(what, functools.partial(self._run_session, peer, run, progress))
            for peer in growth_peers:
                what = f"cost growth {peer.label}"
                progress.set_description(what)
                self._guarded(what, functools.partial(self._run_growth, peer, progress))
            if profiled is not None:
                progress.set_description(f"profiles {profiled.label}")
                self._guarded("profiles", functools.partial(self._run_profiles, profiled, progress))
        self.results.elapsed_s = time.perf_counter() - started
        self.results.machine["Load average at end (1, 5, 15 min)"] = load_average()
        return self.results

    def _guarded(self, what: str, step: Callable[[], None]) -> None:
        """Run one server's share; a failure becomes a note instead of ending the whole run.

        The server is already stopped by then (``ServerProcess`` is a context
        manager); Ctrl-C (``KeyboardInterrupt``) is not caught and ends the run.
        """
        try:
            step()
        except Exception as exc:
            tqdm.write(f"{what} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            # One line for the report: the message's first and last lines (e.g. a log tail).
            lines = str(exc).strip().splitlines() or [""]
            summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
            self.results.failures.append(f"{what} failed: {type(exc).__name__}: {summary}")

    def _session_steps(self) -> list[str]:
        return [name for name in WORKLOADS if name in self.selected and name != "growth"]

    def _step_count(self, growth_peers: int) -> int:
        session_steps = (len(self._session_steps()) + 1) * len(self.peers) * self.settings.runs
        return session_steps + growth_peers * len(self.settings.growth_sizes)

    def _growth_peers(self) -> list[Peer]:
        if "growth" not in self.selected:
            return []
        # Building large partitions at fsync-per-write takes minutes on the peers; a broker
        # that can relax durability per topic (MiniMQ) builds on its strongest server,
        # the others build on their default-setting server. Reads do not depend on it.
        wanted = {True: Durability.STRONGEST, False: Durability.DEFAULTS}
        return [
            peer
            for peer in self.peers
            if peer.measures_growth and peer.durability is wanted[peer.relaxes_per_topic]
        ]

    def _run_session(self, peer: Peer, run: int, progress: tqdm[Any]) -> None:
        with peer.server() as server:
            produced = run_async(lambda: self._session_workloads(peer, server, run, progress))
            # Resources before wrk: its messages are not counted in ``produced``.
            level = peer.durability.value
            self.results.add(level, peer.broker, "rss_mib", server.rss_bytes() / MIB)
            disk = server.disk_bytes()
            if produced:
                self.results.add(level, peer.broker, "disk_bytes_per_message", disk / produced)
            progress.update()
            if "raw-http" in self.selected:
                self._raw_http(peer, server)
                progress.update()

    async def _session_workloads(
        self, peer: Peer, server: ServerProcess, run: int, progress: tqdm[Any]
    ) -> int:
        """Run the per-session workloads; return how many messages they stored in total."""
        session = await peer.connect(server)
        level, broker, settings = peer.durability.value, peer.broker, self.settings
        produced = 0

        def record(metric: str, result: workloads.Throughput, cpu: CpuMeter | None = None) -> None:
            self.results.add(level, broker, metric, result.per_second, result.messages)
            if cpu is not None and result.messages:
                per_message_us = cpu.seconds() / result.messages * 1e6
                self.results.add(level, broker, f"{metric}_cpu", per_message_us, result.messages)

        try:
            if "sequential" in self.selected:
                result = await workloads.produce_sequential(session, f"seq-{run}", settings)
                record("produce_sequential", result)
                produced += result.messages
                progress.update()
            if "batched" in self.selected:
                cpu = CpuMeter(server.pid)
                batched = await workloads.produce_batched(session, f"batch-{run}", settings)
                record("produce_batched", batched, cpu)
                produced += batched.messages
                progress.update()
                if "consume" in self.selected:
                    cpu = CpuMeter(server.pid)
                    result = await workloads.consume_batched(
                        session, f"batch-{run}", batched.messages, settings
                    )
                    record("consume_batched", result, cpu)
                    progress.update()
            if "kafka" in self.selected:
                produced += await self._kafka(peer, server, session, run, record)
                progress.update()
            if "concurrent" in self.selected:
                result = await workloads.produce_concurrent(session, f"conc-{run}", settings)
                record("produce_concurrent", result)
                produced += result.messages
                progress.update()
            if "latency" in self.selected:
                produced += await self._latency(session, level, broker, run)
                progress.update()
        finally:
            await session.close()
        return produced

    async def _kafka(
        self,
        peer: Peer,
        server: ServerProcess,
        session: Session,
        run: int,
        record: Callable[[str, workloads.Throughput, CpuMeter], None],
    ) -> int:
        """The Kafka rows, on a peer with a Kafka port; return how many messages they stored."""
        bootstrap = peer.kafka_bootstrap(server)
        if bootstrap is None:
            return 0
        reason = kafka_workloads.unavailable_reason()
        if reason is not None:
            # Never silently missing: the rows say why, and so do the notes.
            level = peer.durability.value
            for metric in KAFKA_METRICS:
                for key in (metric.key, cpu_metric(metric).key):
                    self.results.mark_not_run(level, peer.broker, key, reason)
            note = f"Kafka rows not run: {reason} (pip install 'minimq[bench]')."
            if note not in self.results.notes:
                self.results.notes.append(note)
            return 0
        topic = f"kafka-{run}"
        await session.create_topic(topic)
        cpu = CpuMeter(server.pid)
        produced = await asyncio.to_thread(kafka_workloads.produce, bootstrap, topic, self.settings)
        record("kafka_produce", produced, cpu)
        cpu = CpuMeter(server.pid)
        consumed = await asyncio.to_thread(
            kafka_workloads.consume, bootstrap, topic, produced.messages, self.settings
        )
        record("kafka_consume", consumed, cpu)
        return produced.messages

    async def _latency(self, session: Session, level: str, broker: str, run: int) -> int:
        stored = 0
        for rate in self.settings.latency_rates:
            topic = f"lat-{rate}-{run}"
            result = await workloads.end_to_end_latency(session, topic, rate, self.settings)
            stored += result.messages + result.lost
            if result.lost:
                self.results.notes.append(
                    f"{broker} at {level}, {rate:,} msgs/s, run {run + 1}: "
                    f"{result.lost} of {result.messages + result.lost} messages did not "
                    f"arrive within {self.settings.latency_drain_s:.0f} s of the last send."
                )
            for stat in ("p50", "p99", "p999"):
                value = getattr(result, f"{stat}_ms")
                self.results.add(level, broker, f"latency_{rate}_{stat}", value, result.messages)
        return stored

    def _raw_http(self, peer: Peer, server: ServerProcess) -> None:
        url = peer.wrk_url(server)
        if url is None:
            return
        if rawhttp.wrk_binary() is None:
            note = "raw HTTP rows skipped: wrk is not installed."
            if note not in self.results.notes:
                self.results.notes.append(note)
            return
        level = peer.durability.value
        for metric, connections in (("raw_http_sequential", 1), ("raw_http_concurrent", 64)):
            result = rawhttp.wrk_produce(url, metric, connections, self.settings.raw_http_seconds)
            self.results.add(level, peer.broker, metric, result.per_second, result.messages)

    def _profiled_peer(self) -> Peer | None:
        """MiniMQ through its own client at the strongest setting, if profiling was asked."""
        if not self.profile:
            return None
        if profiling.py_spy_binary() is None:
            self.results.notes.append("profiles skipped: py-spy is not installed.")
            return None
        for peer in self.peers:
            # MiniMQ (relaxes per topic) through its client (the driver that measures growth).
            strongest = peer.durability is Durability.STRONGEST
            if strongest and peer.relaxes_per_topic and peer.measures_growth:
                return peer
        return None

    def _run_profiles(self, peer: Peer, progress: tqdm[Any]) -> None:
        """Record the broker and this process with py-spy during each profiled workload."""
        seconds = self.settings.profile_seconds
        # Each profiled workload repeats until the recording window is over.
        busy = replace(self.settings, time_cap_s=seconds)
        for name, body in PROFILED.items():
            with peer.server() as server:
                connect = functools.partial(peer.connect, server)
                if name == "consume":
                    run_async(functools.partial(_with_session, connect, _fill_for_consume, busy))
                with (
                    profiling.Sampler(server.pid, seconds) as broker,
                    profiling.Sampler(os.getpid(), seconds) as client,
                ):
                    run_async(functools.partial(_with_session, connect, body, busy))
            for process, sampler in (("broker", broker), ("benchmark client", client)):
                samples, frames = profiling.summarize(sampler.raw, PROFILE_FRAMES)
                self.results.profiles.append(Profile(name, process, samples, frames, sampler.error))
            progress.update()

    def _run_growth(self, peer: Peer, progress: tqdm[Any]) -> None:
        sizes = list(self.settings.growth_sizes)
        if not peer.relaxes_per_topic:
            sizes = [size for size in sizes if size <= self.settings.growth_peer_max]
        self.results.growth_settings[peer.broker] = peer.setting
        with peer.server() as server:
            run_async(lambda: self._growth_reads(peer, server, sizes, progress))
        progress.update(len(self.settings.growth_sizes) - len(sizes))

    async def _growth_reads(
        self, peer: Peer, server: ServerProcess, sizes: list[int], progress: tqdm[Any]
    ) -> None:
        session = await peer.connect(server)
        topic, current = "growth", 0
        try:
            await session.create_topic(topic, bulk_load=True)
            for size in sizes:
                await workloads.bulk_fill(session, topic, current, size, self.settings)
                current = size
                for _round in range(self.settings.runs):
                    timings = await workloads.read_last_latency(
                        session, topic, size, self.settings.growth_reads
                    )
                    for stat, fraction in (("p50", 0.5), ("p99", 0.99)):
                        value = workloads.percentile(timings, fraction)
                        self.results.add_growth(peer.broker, size, stat, value)
                progress.update()
        finally:
            await session.close()
