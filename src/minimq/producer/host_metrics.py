"""Readings of this machine's CPU, memory, disk and network, taken with psutil.

The metric names are the original host producers' ``METRIC_TYPE`` values; each
reading goes to the topic ``<node>-<metric>``, as there, but as a JSON object
the UI can chart::

    {"sensor_id": "node-1-cpu", "node": "node-1", "metric": "cpu",
     "producer_id": "node-1-host-4711", "seq": 17, "value": 12.5, "unit": "%",
     "timestamp": "2026-11-27T23:40:00.123Z"}

=========  ===========================================  ======
metric     ``value``                                    unit
=========  ===========================================  ======
``cpu``    busy share of all cores since the last tick  ``%``
``mem``    memory in use (``virtual_memory().percent``) ``%``
``disk``   space used on the filesystem at ``--disk-path``  ``%``
``net``    bytes sent plus received per second since    ``B/s``
           the last tick (also ``sent_per_s``,
           ``received_per_s``)
=========  ===========================================  ======

Host mode (``HOST_MODE=true``, a Kubernetes DaemonSet or a container with the
host's ``/proc`` mounted at ``/host_proc``) points psutil at that directory, so
CPU, memory and network are the node's, not the container's.  Disk usage is
that of the filesystem mounted at ``--disk-path`` in the producer's own view.

Not thread-safe: one :class:`HostSampler` belongs to the thread that ticks it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import psutil

from minimq.producer.readings import iso_timestamp

log = logging.getLogger("minimq.producer")

METRICS: Final = ("cpu", "mem", "disk", "net")
UNITS: Final = {"cpu": "%", "mem": "%", "disk": "%", "net": "B/s"}


def use_host_proc(path: str) -> bool:
    """Read ``/proc`` from ``path`` (the host's, mounted); False when it is not there."""
    if not os.path.isfile(os.path.join(path, "stat")):
        log.warning("host mode: %s is not a mounted /proc; reading the container's own", path)
        return False
    # psutil's documented switch for a /proc mounted elsewhere (all Linux calls use it).
    psutil.PROCFS_PATH = path
    log.info("host mode: reading the host's metrics from %s", path)
    return True


class HostSampler:
    """Takes one reading of each of ``metrics`` per :meth:`sample` call."""

    def __init__(
        self, node: str, producer_id: str, metrics: Sequence[str], disk_path: str = "/"
    ) -> None:
        self.node = node
        self.producer_id = producer_id
        self.metrics = list(metrics)
        self.disk_path = disk_path
        self._seq = 0
        # Baselines: CPU share and network rates are measured between two calls.
        psutil.cpu_percent(interval=None)
        self._net = psutil.net_io_counters()
        self._net_at = time.monotonic()

    def topic(self, metric: str) -> str:
        return f"{self.node}-{metric}"

    def sample(self) -> list[tuple[str, dict[str, Any]]]:
        """``(topic, reading)`` for every metric, all taken now."""
        readings = []
        for metric in self.metrics:
            self._seq += 1
            reading: dict[str, Any] = {
                "sensor_id": self.topic(metric),
                "node": self.node,
                "metric": metric,
                "producer_id": self.producer_id,
                "seq": self._seq,
                **self._measure(metric),
                "unit": UNITS[metric],
                "timestamp": iso_timestamp(datetime.now(UTC)),
            }
            readings.append((self.topic(metric), reading))
        return readings

    def _measure(self, metric: str) -> dict[str, float]:
        if metric == "cpu":
            return {"value": round(psutil.cpu_percent(interval=None), 2)}
        if metric == "mem":
            return {"value": round(psutil.virtual_memory().percent, 2)}
        if metric == "disk":
            return {"value": round(psutil.disk_usage(self.disk_path).percent, 2)}
        return self._network_rates()

    def _network_rates(self) -> dict[str, float]:
        now, counters = time.monotonic(), psutil.net_io_counters()
        elapsed = max(now - self._net_at, 1e-3)
        # Counters restart when an interface goes away; a negative rate means that.
        sent = max(counters.bytes_sent - self._net.bytes_sent, 0) / elapsed
        received = max(counters.bytes_recv - self._net.bytes_recv, 0) / elapsed
        self._net, self._net_at = counters, now
        return {
            "value": round(sent + received, 1),
            "sent_per_s": round(sent, 1),
            "received_per_s": round(received, 1),
        }
