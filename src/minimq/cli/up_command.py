"""``minimq up``: the broker, N simulated producers and the web UI in one command.

Order of events: check that both ports are free (a clear one-line error
otherwise), start the broker, wait for its ``/healthz``, start the producers
and the UI, wait for the UI to answer, print the URLs, then stream every
service's output with a ``name |`` prefix until Ctrl-C, SIGTERM or SIGHUP, or
until any service exits. Data lives in ``./minimq-data`` by default, so a second
``minimq up`` serves what the first one stored. See
:mod:`minimq.cli.supervisor` for how the services are stopped and why none of
them can outlive this command.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from minimq.cli.options import add_token_option
from minimq.cli.supervisor import (
    PrefixedOutput,
    ServiceExited,
    ServiceSpec,
    Supervisor,
    colour_wanted,
)
from minimq.environment import env, port_or_off

SENSOR_TOPICS = ("temperature", "humidity", "pressure")
BROKER_START_TIMEOUT_SECONDS = 60.0
UI_START_TIMEOUT_SECONDS = 30.0
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class PortInUse(Exception):
    pass


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "up",
        help="run the broker, simulated producers and the web UI together",
        description="Run the broker, N simulated sensor producers and the web UI; "
        "Ctrl-C stops them all.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=env("MINIMQ_DATA_DIR", "minimq-data"),
        help="broker data directory, kept between runs (env MINIMQ_DATA_DIR; "
        "default ./minimq-data)",
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
        help="broker HTTP port (env MINIMQ_PORT; default %(default)s)",
    )
    parser.add_argument(
        "--kafka-port",
        type=port_or_off,
        default=env("MINIMQ_KAFKA_PORT", "9092"),
        help="broker Kafka protocol port; 0 turns it off (env MINIMQ_KAFKA_PORT;"
        " default %(default)s)",
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
        "default: the broker's own)",
    )
    add_token_option(parser)
    parser.add_argument(
        "--ui-password",
        default=env("MINIMQ_UI_PASSWORD"),
        help="password of the web UI's login; without it the token is (env MINIMQ_UI_PASSWORD;"
        " passed to the UI through the environment, never on a command line)",
    )
    parser.set_defaults(handler=run_up)


def connect_host(bind_host: str) -> str:
    """The address a local client uses to reach a server bound to ``bind_host``."""
    host = WILDCARD_HOSTS.get(bind_host, bind_host)
    return f"[{host}]" if ":" in host else host


def ensure_port_free(host: str, port: int, service: str) -> None:
    """Raise :class:`PortInUse` if a server could not listen on ``host:port``.

    SO_REUSEADDR mirrors what the broker and UI do themselves, so a port left
    in TIME_WAIT by a previous run counts as free, a listening one does not.
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
                    f"stop whatever holds it or choose another with --{service}-port"
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


def service_specs(args: argparse.Namespace, broker_url: str) -> list[ServiceSpec]:
    """The broker first (tier 0, stopped last), then producers and the UI (tier 1)."""
    python = [sys.executable, "-m", "minimq"]
    secret = {"MINIMQ_TOKEN": args.token} if args.token else {}
    broker = [
        *python,
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
    specs = [ServiceSpec("broker", broker, secret, tier=0)]
    for number in range(1, args.producers + 1):
        name = f"producer-{number}"
        producer = [
            *python,
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
        specs.append(ServiceSpec(name, producer, secret, tier=1))
    ui = [
        *python,
        "ui",
        "--broker-url",
        broker_url,
        "--host",
        args.host,
        "--port",
        str(args.ui_port),
    ]
    ui_secrets = {**secret, "MINIMQ_UI_PASSWORD": args.ui_password} if args.ui_password else secret
    specs.append(ServiceSpec("ui", ui, ui_secrets, tier=1))
    return specs


def _login_hint(args: argparse.Namespace) -> str:
    if args.ui_password:
        return " (log in with the UI password)"
    if args.token:
        return " (log in with the token)"
    return ""


def run_up(args: argparse.Namespace) -> int:
    try:
        if args.producers < 0:
            raise ValueError("--producers must be 0 or more")
        ports = {"--broker-port": args.broker_port, "--ui-port": args.ui_port}
        if args.kafka_port:
            ports["--kafka-port"] = args.kafka_port
        if len(set(ports.values())) < len(ports):
            raise ValueError(f"two of {', '.join(ports)} are the same port: {ports}")
        ensure_port_free(args.host, args.broker_port, "broker")
        ensure_port_free(args.host, args.ui_port, "ui")
        if args.kafka_port:
            ensure_port_free(args.host, args.kafka_port, "kafka")
    except (PortInUse, ValueError, OSError) as exc:
        print(f"minimq up: {exc}", file=sys.stderr)
        return 1

    host = connect_host(args.host)
    broker_url = f"http://{host}:{args.broker_port}"
    ui_url = f"http://{host}:{args.ui_port}"
    broker, *others = service_specs(args, broker_url)
    output = PrefixedOutput(
        sys.stdout, max(len(s.name) for s in (broker, *others)), colour_wanted(sys.stdout)
    )
    try:
        with Supervisor(output) as supervisor:
            supervisor.start(broker)
            if not supervisor.wait_for(
                lambda: answers_http(f"{broker_url}/healthz"),
                BROKER_START_TIMEOUT_SECONDS,
                f"broker answering on {broker_url}/healthz",
            ):
                return 0
            for spec in others:
                supervisor.start(spec)
            if not supervisor.wait_for(
                lambda: answers_http(f"{ui_url}/", accept_any_status=True),
                UI_START_TIMEOUT_SECONDS,
                f"UI answering on {ui_url}/",
            ):
                return 0
            supervisor.say(f"MiniMQ is up; data in {args.data_dir.resolve()}")
            supervisor.say(f"  broker API  {broker_url}  (contract: {broker_url}/openapi.json)")
            if args.kafka_port:
                supervisor.say(f"  Kafka       {host}:{args.kafka_port}  (bootstrap servers)")
            supervisor.say(f"  web UI      {ui_url}{_login_hint(args)}")
            supervisor.say("Press Ctrl-C to stop.")
            supervisor.supervise()
            assert supervisor.stop_signal is not None
            supervisor.say(f"{supervisor.stop_signal.name} received; stopping every service")
    except (ServiceExited, TimeoutError) as exc:
        print(f"minimq up: {exc}; stopped everything", file=sys.stderr)
        return 1
    return 0
