"""``minimq up``: the broker, N simulated producers and the web UI in one command.

Order of events: check that every port is free (a clear one-line error
otherwise), start the broker, wait for its ``/healthz``, start the producers
and the UI, wait for the UI to answer, print the URLs, then stream every
service's output with a ``name |`` prefix until Ctrl-C, SIGTERM or SIGHUP, or
until any service exits. Data lives in ``./minimq-data`` by default, so a second
``minimq up`` serves what the first one stored. See
:mod:`minimq.cli.supervisor` for how the services are stopped and why none of
them can outlive this command.

``minimq up --cluster`` runs the scale-out shape instead of one broker: a
3-node NATS JetStream cluster (:mod:`minimq.cli.nats_cluster`; its stores in
``./minimq-cluster-data`` by default), waits until JetStream has a meta
leader, then ``--gateways`` stateless brokers over it (``--backend
nats://...``) on consecutive HTTP ports from ``--broker-port``, and the
producers and the UI with every gateway's URL. Each stage starts only once the
one before it is ready, and stops after the ones started after it.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minimq.cli import nats_cluster
from minimq.cli.options import add_token_option
from minimq.cli.supervisor import (
    PrefixedOutput,
    ServiceExited,
    ServiceSpec,
    Supervisor,
    colour_wanted,
)
from minimq.environment import env, port, port_or_off, positive_int, switch

SENSOR_TOPICS = ("temperature", "humidity", "pressure")
NATS_START_TIMEOUT_SECONDS = 60.0
BROKER_START_TIMEOUT_SECONDS = 60.0
UI_START_TIMEOUT_SECONDS = 30.0
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
DATA_DIR = "minimq-data"
CLUSTER_DATA_DIR = "minimq-cluster-data"
# Stop order: the highest tier first, so nothing loses what it depends on
# while it still runs (clients before brokers, brokers before NATS).
NATS_TIER, BROKER_TIER, CLIENT_TIER = 0, 1, 2


class PortInUse(Exception):
    pass


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "up",
        help="run the broker, simulated producers and the web UI together",
        description="Run the broker, N simulated sensor producers and the web UI; "
        "Ctrl-C stops them all. With --cluster: a 3-node NATS JetStream cluster and "
        "stateless broker gateways over it instead of one broker.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=env("MINIMQ_DATA_DIR"),
        help=f"data directory, kept between runs (env MINIMQ_DATA_DIR; default ./{DATA_DIR},"
        f" with --cluster ./{CLUSTER_DATA_DIR} for the NATS nodes' stores)",
    )
    parser.add_argument(
        "--producers",
        type=int,
        default=env("MINIMQ_PRODUCERS", "3"),
        help="number of simulated producers (env MINIMQ_PRODUCERS; default %(default)s)",
    )
    parser.add_argument(
        "--host",
        default=env("MINIMQ_HOST", "127.0.0.1"),
        help="interface the broker and the UI bind to (env MINIMQ_HOST; default %(default)s)",
    )
    parser.add_argument(
        "--broker-port",
        type=int,
        default=env("MINIMQ_PORT", "5000"),
        help="broker HTTP port; with --cluster the first gateway's, the others on the next"
        " ports (env MINIMQ_PORT; default %(default)s)",
    )
    parser.add_argument(
        "--kafka-port",
        type=port_or_off,
        default=env("MINIMQ_KAFKA_PORT", "9092"),
        help="broker Kafka protocol port (with --cluster: the first gateway's); 0 turns it"
        " off (env MINIMQ_KAFKA_PORT; default %(default)s)",
    )
    parser.add_argument(
        "--ui-port",
        type=int,
        default=env("MINIMQ_UI_PORT", "8080"),
        help="web UI port (env MINIMQ_UI_PORT; default %(default)s)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=env("INTERVAL_SECONDS"),
        help="seconds between a producer's readings (env INTERVAL_SECONDS; "
        "default: the producer's own)",
    )
    parser.add_argument(
        "--fsync",
        default=env("MINIMQ_FSYNC"),
        help="broker fsync policy: always, interval:<ms> or never (env MINIMQ_FSYNC; "
        "default: the broker's own; the disk engine's, not used with --cluster)",
    )
    add_token_option(parser)
    parser.add_argument(
        "--ui-password",
        default=env("MINIMQ_UI_PASSWORD"),
        help="password of the web UI's login; without it the token is (env MINIMQ_UI_PASSWORD;"
        " passed to the UI through the environment, never on a command line)",
    )
    add_cluster_options(parser)
    parser.set_defaults(handler=run_up)


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("scale-out (--cluster)")
    cluster.add_argument(
        "--cluster",
        action="store_true",
        default=switch(env("MINIMQ_CLUSTER", "0") or "0"),
        help="run a 3-node NATS JetStream cluster and stateless broker gateways over it"
        f" (needs {nats_cluster.INSTALL_HINT}; env MINIMQ_CLUSTER)",
    )
    cluster.add_argument(
        "--gateways",
        type=positive_int,
        default=env("MINIMQ_GATEWAYS", "2"),
        help="broker gateways over the cluster (env MINIMQ_GATEWAYS; default %(default)s)",
    )
    cluster.add_argument(
        "--nats-port",
        type=port,
        default=env("MINIMQ_NATS_PORT", "4222"),
        help="first NATS node's client port, the others on the next ports"
        " (env MINIMQ_NATS_PORT; default %(default)s)",
    )
    cluster.add_argument(
        "--nats-route-port",
        type=port,
        default=env("MINIMQ_NATS_ROUTE_PORT", "6222"),
        help="first NATS node's cluster route port, the others on the next ports"
        " (env MINIMQ_NATS_ROUTE_PORT; default %(default)s)",
    )
    cluster.add_argument(
        "--nats-monitor-port",
        type=port,
        default=env("MINIMQ_NATS_MONITOR_PORT", "8222"),
        help="first NATS node's monitoring port (/healthz, /jsz), the others on the next"
        " ports (env MINIMQ_NATS_MONITOR_PORT; default %(default)s)",
    )
    cluster.add_argument(
        "--nats-namespace",
        default=env("MINIMQ_NATS_NAMESPACE", "minimq"),
        help="prefix of the gateways' streams, subjects and KV buckets"
        " (env MINIMQ_NATS_NAMESPACE; default %(default)s)",
    )


def connect_host(bind_host: str) -> str:
    """The address a local client uses to reach a server bound to ``bind_host``."""
    host = WILDCARD_HOSTS.get(bind_host, bind_host)
    return f"[{host}]" if ":" in host else host


def ensure_port_free(host: str, port: int, service: str, flag: str | None = None) -> None:
    """Raise :class:`PortInUse` if a server could not listen on ``host:port``.

    SO_REUSEADDR mirrors what the broker and UI do themselves, so a port left
    in TIME_WAIT by a previous run counts as free, a listening one does not.
    ``flag`` is the option that moves the port (``--<service>-port`` by default).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(
                    f"port {port} on {host} (for the {service}) is already in use; "
                    f"stop whatever holds it or choose another with {flag or f'--{service}-port'}"
                ) from None
            raise


def answers_http(url: str, accept_any_status: bool = False) -> bool:
    """True when ``url`` answers 200 (or anything below 500 with ``accept_any_status``)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        return accept_any_status and exc.code < 500
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class PortClaim:
    """A port a service will listen on, and the flag that moves it."""

    service: str
    port: int
    flag: str


@dataclass(frozen=True)
class Stage:
    """Services started together, then waited for until ``ready`` holds."""

    specs: list[ServiceSpec]
    ready: Callable[[], bool]
    timeout: float
    description: str


@dataclass
class Plan:
    """What one ``minimq up`` runs: its ports, its stages in order and the banner."""

    ports: list[PortClaim]
    stages: list[Stage]
    banner: list[str]
    prepare: Callable[[], None] = field(default=lambda: None)


def _python() -> list[str]:
    return [sys.executable, "-m", "minimq"]


def _secret(args: argparse.Namespace) -> dict[str, str]:
    # Through the environment, never on a command line (ps shows those to everyone).
    return {"MINIMQ_TOKEN": args.token} if args.token else {}


def client_specs(args: argparse.Namespace, broker_url: str, tier: int) -> list[ServiceSpec]:
    """The producers and the UI, all given ``broker_url`` (one URL, or several comma-separated)."""
    secret = _secret(args)
    specs = []
    for number in range(1, args.producers + 1):
        name = f"producer-{number}"
        producer = [
            *_python(),
            "producer",
            "--broker-url",
            broker_url,
            "--topics",
            ",".join(SENSOR_TOPICS),
            "--producer-id",
            name,
        ]
        if args.interval is not None:
            producer += ["--interval", str(args.interval)]
        specs.append(ServiceSpec(name, producer, secret, tier=tier))
    ui = [
        *_python(),
        "ui",
        "--broker-url",
        broker_url,
        "--host",
        args.host,
        "--port",
        str(args.ui_port),
    ]
    ui_secrets = {**secret, "MINIMQ_UI_PASSWORD": args.ui_password} if args.ui_password else secret
    specs.append(ServiceSpec("ui", ui, ui_secrets, tier=tier))
    return specs


def service_specs(args: argparse.Namespace, broker_url: str) -> list[ServiceSpec]:
    """The broker first (stopped last), then producers and the UI."""
    broker = [
        *_python(),
        "broker",
        "--data-dir",
        str(args.data_dir.resolve()),
        "--host",
        args.host,
        "--port",
        str(args.broker_port),
        "--kafka-port",
        str(args.kafka_port),
    ]
    if args.fsync:
        broker += ["--fsync", args.fsync]
    return [
        ServiceSpec("broker", broker, _secret(args), tier=0),
        *client_specs(args, broker_url, tier=1),
    ]


def _ui_stage(args: argparse.Namespace, specs: list[ServiceSpec], ui_url: str) -> Stage:
    return Stage(
        specs,
        lambda: answers_http(f"{ui_url}/", accept_any_status=True),
        UI_START_TIMEOUT_SECONDS,
        f"UI answering on {ui_url}/",
    )


def _login_hint(args: argparse.Namespace) -> str:
    if args.ui_password:
        return " (log in with the UI password)"
    if args.token:
        return " (log in with the token)"
    return ""


def single_broker_plan(args: argparse.Namespace) -> Plan:
    """One broker on a data directory, the producers and the UI."""
    host = connect_host(args.host)
    broker_url = f"http://{host}:{args.broker_port}"
    ui_url = f"http://{host}:{args.ui_port}"
    broker, *clients = service_specs(args, broker_url)
    ports = [
        PortClaim("broker", args.broker_port, "--broker-port"),
        PortClaim("ui", args.ui_port, "--ui-port"),
    ]
    if args.kafka_port:
        ports.append(PortClaim("kafka", args.kafka_port, "--kafka-port"))
    banner = [
        f"MiniMQ is up; data in {args.data_dir.resolve()}",
        f"  broker API  {broker_url}  (contract: {broker_url}/openapi.json)",
    ]
    if args.kafka_port:
        banner.append(f"  Kafka       {host}:{args.kafka_port}  (bootstrap servers)")
    banner.append(f"  web UI      {ui_url}{_login_hint(args)}")
    stages = [
        Stage(
            [broker],
            lambda: answers_http(f"{broker_url}/healthz"),
            BROKER_START_TIMEOUT_SECONDS,
            f"broker answering on {broker_url}/healthz",
        ),
        _ui_stage(args, clients, ui_url),
    ]
    return Plan(ports, stages, banner)


def gateway_specs(args: argparse.Namespace, cluster: nats_cluster.NatsCluster) -> list[ServiceSpec]:
    """``--gateways`` brokers over the cluster; only the first has the Kafka listener.

    One Kafka listener because each answers Metadata with itself as the whole
    cluster: a client bootstrapped from two would be told two different broker lists.
    """
    specs = []
    for index in range(args.gateways):
        gateway = [
            *_python(),
            "broker",
            "--backend",
            cluster.backend(),
            "--nats-namespace",
            args.nats_namespace,
            "--host",
            args.host,
            "--port",
            str(args.broker_port + index),
            # Where the other gateways forward the requests of the groups this one coordinates.
            "--advertised-url",
            f"http://{connect_host(args.host)}:{args.broker_port + index}",
            "--kafka-port",
            str(args.kafka_port if index == 0 else 0),
        ]
        specs.append(ServiceSpec(f"gateway-{index + 1}", gateway, _secret(args), BROKER_TIER))
    return specs


def cluster_plan(args: argparse.Namespace) -> Plan:
    """A NATS JetStream cluster, gateways over it, the producers and the UI."""
    binary = nats_cluster.find_nats_server()
    host = connect_host(args.host)
    cluster = nats_cluster.plan_cluster(
        args.data_dir / "nats",
        bind_host=args.host,
        connect_host=WILDCARD_HOSTS.get(args.host, args.host),
        client_port=args.nats_port,
        route_port=args.nats_route_port,
        monitor_port=args.nats_monitor_port,
    )
    gateway_urls = [f"http://{host}:{args.broker_port + i}" for i in range(args.gateways)]
    ui_url = f"http://{host}:{args.ui_port}"
    flags = {
        "client": "--nats-port",
        "route": "--nats-route-port",
        "monitor": "--nats-monitor-port",
    }
    ports = [
        PortClaim(service, number, flags[service.rsplit(" ", 1)[1]])
        for service, number in cluster.ports().items()
    ]
    ports += [
        PortClaim(f"gateway-{i + 1}", args.broker_port + i, "--broker-port")
        for i in range(args.gateways)
    ]
    ports.append(PortClaim("ui", args.ui_port, "--ui-port"))
    if args.kafka_port:
        ports.append(PortClaim("kafka", args.kafka_port, "--kafka-port"))

    def gateways_ready() -> bool:
        return all(answers_http(f"{url}/healthz") for url in gateway_urls)

    stages = [
        Stage(
            nats_cluster.node_specs(cluster, binary, NATS_TIER),
            lambda: nats_cluster.cluster_ready(cluster),
            NATS_START_TIMEOUT_SECONDS,
            f"JetStream meta leader on all {len(cluster.nodes)} NATS nodes",
        ),
        Stage(
            gateway_specs(args, cluster),
            gateways_ready,
            BROKER_START_TIMEOUT_SECONDS,
            f"gateways answering on {', '.join(u + '/healthz' for u in gateway_urls)}",
        ),
        _ui_stage(args, client_specs(args, ",".join(gateway_urls), CLIENT_TIER), ui_url),
    ]
    first = cluster.nodes[0]
    banner = [
        f"MiniMQ is up on a {len(cluster.nodes)}-node NATS JetStream cluster;"
        f" data in {args.data_dir.resolve()}",
        f"  NATS        {cluster.backend()}"
        f"  (monitoring: {cluster.monitor_url(first)}/jsz and the next ports)",
    ]
    for number, url in enumerate(gateway_urls, start=1):
        contract = f"  (contract: {url}/openapi.json)" if number == 1 else ""
        banner.append(f"  gateway {number}   {url}{contract}")
    if args.kafka_port:
        banner.append(f"  Kafka       {host}:{args.kafka_port}  (bootstrap servers; gateway 1)")
    banner.append(f"  web UI      {ui_url}{_login_hint(args)}")
    banner.append(f"  clients     BROKER_URL={','.join(gateway_urls)}")
    return Plan(ports, stages, banner, prepare=lambda: nats_cluster.write_configs(cluster))


def check_ports(host: str, ports: list[PortClaim]) -> None:
    """Every port distinct and free, or :class:`ValueError` / :class:`PortInUse`."""
    seen: dict[int, PortClaim] = {}
    for claim in ports:
        if claim.port in seen:
            other = seen[claim.port]
            raise ValueError(
                f"the {other.service} ({other.flag}) and the {claim.service} ({claim.flag})"
                f" would both use port {claim.port}"
            )
        seen[claim.port] = claim
    for claim in ports:
        ensure_port_free(host, claim.port, claim.service, claim.flag)


def run_up(args: argparse.Namespace) -> int:
    try:
        if args.producers < 0:
            raise ValueError("--producers must be 0 or more")
        if args.data_dir is None:
            args.data_dir = Path(CLUSTER_DATA_DIR if args.cluster else DATA_DIR)
        plan = cluster_plan(args) if args.cluster else single_broker_plan(args)
        check_ports(args.host, plan.ports)
        plan.prepare()
    except (PortInUse, ValueError, OSError, nats_cluster.NatsServerMissing) as exc:
        print(f"minimq up: {exc}", file=sys.stderr)
        return 1

    names = [spec.name for stage in plan.stages for spec in stage.specs]
    output = PrefixedOutput(sys.stdout, max(map(len, names)), colour_wanted(sys.stdout))
    try:
        with Supervisor(output) as supervisor:
            for stage in plan.stages:
                for spec in stage.specs:
                    supervisor.start(spec)
                if not supervisor.wait_for(stage.ready, stage.timeout, stage.description):
                    return 0
            for line in plan.banner:
                supervisor.say(line)
            supervisor.say("Press Ctrl-C to stop.")
            supervisor.supervise()
            assert supervisor.stop_signal is not None
            supervisor.say(f"{supervisor.stop_signal.name} received; stopping every service")
    except (ServiceExited, TimeoutError) as exc:
        print(f"minimq up: {exc}; stopped everything", file=sys.stderr)
        return 1
    return 0
