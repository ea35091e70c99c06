"""The sensor simulator: ``count`` producers ticking every ``interval`` seconds.

Each tick of a simulated producer picks one of the configured topics at
random (or the pinned one), takes a reading from that producer's sensor for
it (:mod:`minimq.producer.readings`) and hands it to one shared
:class:`minimq.client.Producer`, keyed by sensor id.

Broker outages: the client producer keeps every reading taken in its bounded
buffer and retries with capped exponential backoff, forever, logging once when
the broker goes away and once when it is back.  While that buffer is full the
simulator skips ticks instead of taking readings it could not keep, so no
reading already taken is dropped.  On SIGTERM/SIGINT it stops taking readings,
spends at most :data:`SHUTDOWN_GRACE` seconds delivering what is buffered, and
reports any reading it could not deliver.

Concurrency contract: :func:`run` runs in the main thread (it installs signal
handlers); delivery happens on the client producer's sender thread.
"""

from __future__ import annotations

import heapq
import logging
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import Future
from types import FrameType

from minimq.client import Producer, RecordMetadata
from minimq.producer.config import SimulatorConfig
from minimq.producer.readings import Sensor

log = logging.getLogger("minimq.producer")

# Stopping must finish within 2 s of the signal; keep a margin for the exit itself.
SHUTDOWN_GRACE = 1.0
# Never wait longer than this for one produce request: a hung broker must not
# stall shutdown or the retry loop.
REQUEST_TIMEOUT = 5.0


class SimulatedProducer:
    """One producer id with one sensor per topic it may pick."""

    def __init__(self, producer_id: str, topics: list[str], rng: random.Random) -> None:
        self.producer_id = producer_id
        self._rng = rng
        self._sensors = [Sensor(topic, producer_id, rng) for topic in topics]
        self._taken = 0

    def tick(self) -> tuple[Sensor, dict[str, object]]:
        sensor = self._rng.choice(self._sensors)
        self._taken += 1
        return sensor, sensor.read(self._taken)


class DeliveryLog:
    """Counts outcomes from the sender thread; logs each distinct failure once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed: Counter[str] = Counter()

    def __call__(self, future: Future[RecordMetadata]) -> None:
        error = future.exception()
        with self._lock:
            if error is None:
                self.delivered += 1
                return
            message = str(error)
            if not self.failed[message]:
                log.error("reading not delivered: %s", message)
            self.failed[message] += 1


def producer_ids(config: SimulatorConfig) -> list[str]:
    if config.count == 1:
        return [config.producer_id]
    return [f"{config.producer_id}-{n}" for n in range(1, config.count + 1)]


def reading_producer(broker_url: str, token: str | None, buffer_records: int) -> Producer:
    """The client producer every reading source sends with.

    It retries without end and never times a send out: readings wait in its
    bounded buffer (``buffer_records``) while the broker is away.
    """
    return Producer(
        broker_url,
        token=token,
        buffer_records=buffer_records,
        retries=None,
        send_timeout=None,
        request_timeout=REQUEST_TIMEOUT,
    )


def run(config: SimulatorConfig, stop: threading.Event | None = None) -> int:
    """Simulate until ``stop`` is set or SIGTERM/SIGINT arrives; the exit code."""
    stop = stop or threading.Event()
    previous = install_stop_handlers(stop)
    rng = random.Random()
    simulated = [SimulatedProducer(pid, config.topics, rng) for pid in producer_ids(config)]
    outcomes = DeliveryLog()
    producer = reading_producer(config.broker_url, config.token, config.buffer_records)
    log.info(
        "%d simulated producer(s) sending to %s every %ss on %s",
        len(simulated),
        config.broker_url,
        config.interval,
        ",".join(config.topics),
    )
    taken = 0
    try:
        taken = _tick_until_stopped(config, simulated, producer, outcomes, stop)
    finally:
        producer.close(timeout=SHUTDOWN_GRACE)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    undelivered = taken - outcomes.delivered
    log.info("stopped: %d readings taken, %d delivered", taken, outcomes.delivered)
    if undelivered:
        log.warning("%d readings could not be delivered before shutdown", undelivered)
    return 0


def _tick_until_stopped(
    config: SimulatorConfig,
    simulated: list[SimulatedProducer],
    producer: Producer,
    outcomes: DeliveryLog,
    stop: threading.Event,
) -> int:
    start = time.monotonic()
    # Spread the producers over one interval so a large --count does not burst.
    schedule = [(start + i * config.interval / len(simulated), i) for i in range(len(simulated))]
    heapq.heapify(schedule)
    taken = 0
    buffer_full = False
    while True:
        due, index = schedule[0]
        if stop.wait(max(0.0, due - time.monotonic())):
            return taken
        # After a long stall (suspend, overload) skip missed ticks instead of bursting.
        heapq.heapreplace(schedule, (max(due + config.interval, time.monotonic()), index))
        if producer.buffered >= config.buffer_records:
            if not buffer_full:
                log.warning("buffer full (%d readings); pausing readings", config.buffer_records)
            buffer_full = True
            continue
        buffer_full = False
        sensor, reading = simulated[index].tick()
        producer.send(sensor.topic, reading, key=sensor.sensor_id, callback=outcomes)
        taken += 1
        log.debug("%s -> %s: %s", sensor.sensor_id, sensor.topic, reading)


def install_stop_handlers(stop: threading.Event) -> dict[int, signal._HANDLER]:
    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
