"""The brokers a churn run talks to: one disk broker, or gateways over a JetStream cluster.

:func:`start_brokers` starts, on ``run_dir``, either

* ``gateways=0``: one broker on its own data directory (``--fsync always``), as a
  single-node deployment runs; or
* ``gateways=N``: a real 3-node ``nats-server`` cluster
  (:class:`~tests.support.nats_cluster.NatsCluster`) and ``N`` stateless gateways over it
  (``--backend nats://...``, ``--replicas 3``), all in one fresh namespace.  A consumer
  group is then coordinated by whichever gateway holds its ownership lease; members
  talking to the other gateway are forwarded to it, which is what the churn checks here.

Every broker gets the run's short ``--session-timeout-ms``: a paused member must be
expired by whichever gateway coordinates its group.  Each process is registered with the
caller's :class:`~contextlib.ExitStack` before it starts, so it is stopped by PID (SIGTERM,
SIGKILL after a timeout) when the run ends, also when it failed half-way; the gateways
stop before the cluster they sit on.

:func:`urls_for` spreads clients over the brokers: the ``n``-th client is given every
URL, starting at the ``n``-th, so clients start on different gateways and each client's
failover (:mod:`minimq.client._failover`) still has another to go to.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from pathlib import Path

from tests.support.nats_cluster import NatsCluster
from tests.support.processes import BrokerProcess

CLUSTER_NODES = 3


def start_brokers(
    run_dir: Path, *, gateways: int, session_timeout_ms: int, cleanup: contextlib.ExitStack
) -> list[str]:
    """Start the run's brokers (see the module docstring); returns their base URLs."""
    if gateways < 0:
        raise ValueError(f"gateways must be 0 (one disk broker) or more, not {gateways}")
    common = ["--session-timeout-ms", str(session_timeout_ms), "--log-level", "WARNING"]
    if gateways == 0:
        data_dir = run_dir / "data"
        data_dir.mkdir(parents=True)
        broker = BrokerProcess(data_dir, ["--fsync", "always", *common])
        cleanup.callback(broker.stop)
        return [broker.start().url]
    cluster = cleanup.enter_context(NatsCluster(run_dir / "nats", nodes=CLUSTER_NODES))
    namespace = f"churn{uuid.uuid4().hex[:16]}"  # no other run shares this cluster's names
    urls = []
    for number in range(gateways):
        data_dir = run_dir / f"gateway-{number}" / "data"
        data_dir.mkdir(parents=True)
        gateway = BrokerProcess(
            data_dir,
            [
                "--replicas",
                str(CLUSTER_NODES),
                # A bare host means http://127.0.0.1:<--port>: the gateway's own URL, even
                # when BrokerProcess moves to another port after a port clash at start.
                "--advertised-url",
                "127.0.0.1",
                *common,
            ],
            backend=",".join(cluster.urls),
            nats_namespace=namespace,
        )
        cleanup.callback(gateway.stop)
        urls.append(gateway.start().url)
    return urls


def urls_for(number: int, urls: Sequence[str]) -> list[str]:
    """The broker URLs of the ``number``-th client: all of them, starting at the next one."""
    start = number % len(urls)
    return [*urls[start:], *urls[:start]]
