"""``minimq ui``: serve the web UI (waitress by default, Flask's dev server with ``--dev``)."""

from __future__ import annotations

import argparse
import logging

import waitress

from minimq.cli.options import add_client_options
from minimq.environment import env
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
    app = create_app(args.broker_url, args.token, secret_key=env("MINIMQ_UI_SECRET_KEY"))
    if args.dev:
        app.run(host=args.host, port=args.port, debug=True)
        return 0
    logging.getLogger(__name__).info(
        "MiniMQ UI on http://%s:%d (broker %s)", args.host, args.port, args.broker_url
    )
    waitress.serve(app, host=args.host, port=args.port, threads=WAITRESS_THREADS)
    return 0
