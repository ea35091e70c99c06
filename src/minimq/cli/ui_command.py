"""``minimq ui``: serve the web UI (waitress by default, Flask's dev server with ``--dev``)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
from types import FrameType

import waitress

from minimq.cli.options import add_client_options
from minimq.environment import env, switch
from minimq.ui import create_app

DEFAULT_PORT = 8080
WAITRESS_THREADS = 8


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ui",
        help="serve the web UI",
        description="Serve the MiniMQ web UI: dashboard, live topic tail, charts, groups, produce.",
    )
    add_client_options(parser)
    # The original UI read BROKER_URL; MINIMQ_BROKER_URL wins when both are set.
    parser.set_defaults(
        broker_url=env("MINIMQ_BROKER_URL", env("BROKER_URL", "http://localhost:5000"))
    )
    parser.add_argument(
        "--host",
        default=env("MINIMQ_UI_HOST", "127.0.0.1"),
        help="address to listen on (env MINIMQ_UI_HOST; default %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env("MINIMQ_UI_PORT", str(DEFAULT_PORT)) or DEFAULT_PORT),
        help="port to listen on (env MINIMQ_UI_PORT; default %(default)s)",
    )
    parser.add_argument(
        "--password",
        default=env("MINIMQ_UI_PASSWORD"),
        help="password of the UI's login; without it, a --token is the password (env"
        " MINIMQ_UI_PASSWORD, which keeps it out of the process list)",
    )
    parser.add_argument(
        "--secure-cookie",
        action="store_true",
        default=switch(env("MINIMQ_UI_SECURE_COOKIE") or "0"),
        help="mark the session cookie Secure even over plain http, for a UI behind a proxy"
        " that ends TLS; over https it is Secure anyway (env MINIMQ_UI_SECURE_COOKIE)",
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="use Flask's development server with reloader and debugger (never in production)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per broker call would drown the UI's own log.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    log = logging.getLogger(__name__)
    if not (args.password or args.token) and _beyond_loopback(args.host):
        log.warning(
            "!!! UI listening on %s WITHOUT a login: anyone who can reach this port can read,"
            " produce and delete through it. Set MINIMQ_UI_PASSWORD or --token. !!!",
            args.host,
        )
    app = create_app(
        args.broker_url,
        args.token,
        password=args.password,
        secret_key=env("MINIMQ_UI_SECRET_KEY"),
        secure_cookie=args.secure_cookie,
    )
    if args.dev:
        app.run(host=args.host, port=args.port, debug=True)
        return 0
    log.info(
        "MiniMQ UI on http://%s:%d (broker %s, login %s)",
        args.host,
        args.port,
        args.broker_url,
        "on" if args.password or args.token else "off",
    )
    # waitress ends its loop cleanly on SystemExit but leaves SIGTERM to the
    # default action, which kills the process (exit 143 on `docker stop`).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    waitress.serve(app, host=args.host, port=args.port, threads=WAITRESS_THREADS)
    log.info("UI stopped")
    return 0


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _beyond_loopback(host: str) -> bool:
    """True when ``host`` accepts connections from other machines (the broker's rule)."""
    if host in ("localhost", ""):
        return host == ""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
