"""The host-metric producer: this machine's readings every ``interval`` seconds.

As the original's host producers did, it first registers its node by
producing the node name (a JSON string) to the ``nodes`` topic, which the
broker's ``GET /nodes`` lists; then each tick sends one reading per metric
to ``<node>-<metric>`` (:mod:`minimq.producer.host_metrics`), keyed by the
node name.

Delivery, broker outages and shutdown work as in
:mod:`minimq.producer.simulator`: one client producer buffers and retries,
ticks are skipped while its buffer is full, and SIGTERM/SIGINT stop it
within :data:`~minimq.producer.simulator.SHUTDOWN_GRACE` plus one tick's
sampling.  Runs in the main thread (it installs signal handlers).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Final

from minimq.client import Producer
from minimq.producer.config import HostMetricsConfig
from minimq.producer.host_metrics import HostSampler, use_host_proc
from minimq.producer.simulator import (
    SHUTDOWN_GRACE,
    DeliveryLog,
    install_stop_handlers,
    reading_producer,
)

log = logging.getLogger("minimq.producer")

NODES_TOPIC: Final = "nodes"


def run_host(config: HostMetricsConfig, stop: threading.Event | None = None) -> int:
    """Send host readings until ``stop`` is set or SIGTERM/SIGINT arrives; the exit code."""
    stop = stop or threading.Event()
    previous = install_stop_handlers(stop)
    if config.host_proc is not None:
        use_host_proc(config.host_proc)
    sampler = HostSampler(config.node_name, config.producer_id, config.metrics, config.disk_path)
    outcomes = DeliveryLog()
    producer = reading_producer(config.broker_url, config.token, config.buffer_records)
    log.info(
        "host metrics of node %s (%s) to %s every %ss",
        config.node_name,
        ",".join(config.metrics),
        config.broker_url,
        config.interval,
    )
    taken = 0
    try:
        producer.send(NODES_TOPIC, config.node_name, key=config.node_name, callback=outcomes)
        taken = 1 + _sample_until_stopped(config, sampler, producer, outcomes, stop)
    finally:
        producer.close(timeout=SHUTDOWN_GRACE)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped: %d records taken, %d delivered", taken, outcomes.delivered)
    if taken > outcomes.delivered:
        log.warning("%d records could not be delivered before shutdown", taken - outcomes.delivered)
    return 0


def _sample_until_stopped(
    config: HostMetricsConfig,
    sampler: HostSampler,
    producer: Producer,
    outcomes: DeliveryLog,
    stop: threading.Event,
) -> int:
    taken = 0
    due = time.monotonic() + config.interval
    while not stop.wait(max(0.0, due - time.monotonic())):
        # After a stall (suspend, overload) go on from now instead of bursting.
        due = max(due + config.interval, time.monotonic())
        if producer.buffered >= config.buffer_records:
            log.warning("buffer full (%d records); skipping this tick", config.buffer_records)
            continue
        for topic, reading in sampler.sample():
            producer.send(topic, reading, key=config.node_name, callback=outcomes)
            taken += 1
            log.debug("%s: %s", topic, reading)
    return taken
