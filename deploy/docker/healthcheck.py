"""The image's HEALTHCHECK: probe whichever MiniMQ service the container runs.

One image runs the broker, the UI, the producers and (in the cluster files)
the NATS nodes, and Docker gives a health check no way to see the command a
container was started with.  This script finds the ``minimq`` or
``nats-server`` process in the container's ``/proc`` and follows its command
line:

===============  ============================================================
command          healthy when
===============  ============================================================
``broker``       ``GET /healthz`` answers 200 on its ``--port`` (``MINIMQ_PORT``,
``up``           default 5000)
``ui``           ``GET /healthz`` answers 200 on its ``--port`` (``MINIMQ_UI_PORT``,
                 default 8080); the UI's own liveness, not the broker's
``nats-server``  ``GET /healthz`` answers 200 on its monitoring port (``-m`` or
                 ``--http_port``, ``NATS_MONITOR_PORT``, default 8222): in a
                 cluster only once the node is current with the JetStream meta
                 leader and has caught up on its streams
anything else    the process runs (producers have no port to ask)
===============  ============================================================

Exit status 0 is healthy, 1 unhealthy (Docker's convention).  ``--pid``
checks one given process instead of searching, for tests on a host.
Standard library only: it runs with the image's Python and nothing else.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
from pathlib import Path

PROC = Path("/proc")
NATS_SERVER = "nats-server"
DEFAULT_PORTS = {"broker": 5000, "up": 5000, "ui": 8080, NATS_SERVER: 8222}
PORT_VARIABLES = {
    "broker": "MINIMQ_PORT",
    "up": "MINIMQ_PORT",
    "ui": "MINIMQ_UI_PORT",
    NATS_SERVER: "NATS_MONITOR_PORT",
}
# nats-server's own -p and -a are its client port and address, not the monitoring one's.
PORT_OPTIONS = {NATS_SERVER: ("-m", "--http_port")}
WILDCARD_HOSTS = {"0.0.0.0", "::", "", "[::]"}


def command_line(pid: int) -> list[str]:
    raw = (PROC / str(pid) / "cmdline").read_bytes()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def minimq_arguments(argv: list[str]) -> list[str] | None:
    """What follows ``minimq`` in ``argv`` (the console script or ``-m minimq``), or None.

    A ``nats-server`` process gives ``["nats-server", *its arguments]``.
    """
    if argv and os.path.basename(argv[0]) == NATS_SERVER:
        return [NATS_SERVER, *argv[1:]]
    for index, part in enumerate(argv):
        if os.path.basename(part) == "minimq":
            return argv[index + 1 :]
    return None


def find_service(own_pid: int) -> tuple[int, list[str]] | None:
    """The first (lowest pid) ``minimq`` or ``nats-server`` process but this one, and its
    arguments."""
    pids = sorted(int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit())
    for pid in pids:
        if pid == own_pid:
            continue
        try:
            arguments = minimq_arguments(command_line(pid))
        except OSError:
            continue  # ended meanwhile
        if arguments:
            return pid, arguments
    return None


def option(arguments: list[str], name: str) -> str | None:
    """The value of ``--name V`` or ``--name=V``; the last one wins, as with argparse."""
    value = None
    for index, part in enumerate(arguments):
        if part == name and index + 1 < len(arguments):
            value = arguments[index + 1]
        elif part.startswith(name + "="):
            value = part.partition("=")[2]
    return value


def probe_url(arguments: list[str]) -> str | None:
    """The ``/healthz`` URL of the service ``arguments`` run, or None when it has none."""
    command = arguments[0]
    if command not in DEFAULT_PORTS:
        return None
    given = [option(arguments, name) for name in PORT_OPTIONS.get(command, ("--port",))]
    port = next((p for p in given if p), None) or os.environ.get(PORT_VARIABLES[command])
    host = "127.0.0.1" if command == NATS_SERVER else option(arguments, "--host") or "127.0.0.1"
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port or DEFAULT_PORTS[command]}/healthz"


def check(arguments: list[str]) -> tuple[bool, str]:
    url = probe_url(arguments)
    if url is None:
        return True, f"minimq {arguments[0]} is running (no port to probe)"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200, f"{url}: {answer.status}"
    except OSError as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pid", type=int, help="check this process instead of searching")
    args = parser.parse_args(argv)
    if args.pid is not None:
        try:
            arguments = minimq_arguments(command_line(args.pid))
        except OSError:
            arguments = None
        found = (args.pid, arguments) if arguments else None
    else:
        found = find_service(os.getpid())
    if found is None:
        print("unhealthy: no minimq or nats-server process", file=sys.stderr)
        return 1
    healthy, detail = check(found[1])
    print(("healthy: " if healthy else "unhealthy: ") + detail)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
