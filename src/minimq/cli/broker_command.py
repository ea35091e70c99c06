"""``minimq broker``: flags and ``MINIMQ_*`` variables → BrokerConfig → serve."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import uvloop

from minimq.cli.options import add_token_option
from minimq.core.timestamps import DEFAULT_AFTER_MAX_MS, DEFAULT_BEFORE_MAX_MS
from minimq.environment import env, one_of, port
from minimq.errors import InvalidConfig
from minimq.server.config import MIB, BrokerConfig
from minimq.server.process import serve
from minimq.storage.api import UNBOUNDED_MS, FsyncPolicy


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "broker", help="run the broker", description="Run the MiniMQ broker."
    )
    add = parser.add_argument
    add(
        "--data-dir",
        type=Path,
        default=Path(env("MINIMQ_DATA_DIR", "./minimq-data") or ""),
        help="data directory (env MINIMQ_DATA_DIR; default %(default)s)",
    )
    add(
        "--host",
        default=env("MINIMQ_HOST", "127.0.0.1"),
        help="address to bind (env MINIMQ_HOST; default %(default)s)",
    )
    add(
        "--port",
        type=port,
        default=int(env("MINIMQ_PORT", "5000") or 5000),
        help="port (env MINIMQ_PORT; default %(default)s)",
    )
    add(
        "--fsync",
        default=env("MINIMQ_FSYNC", "always"),
        help="always | interval:MS | never (env MINIMQ_FSYNC; default %(default)s)",
    )
    add_token_option(parser)
    add(
        "--log-level",
        type=one_of("DEBUG", "INFO", "WARNING", "ERROR"),
        default=env("MINIMQ_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (env MINIMQ_LOG_LEVEL; default %(default)s)",
    )
    add(
        "--default-partitions",
        type=int,
        default=int(env("MINIMQ_DEFAULT_PARTITIONS", "1") or 1),
        help="partitions of auto-created topics (env MINIMQ_DEFAULT_PARTITIONS)",
    )
    add(
        "--max-body-bytes",
        type=int,
        default=int(env("MINIMQ_MAX_BODY_BYTES") or 8 * MIB),
        help="largest request body (env MINIMQ_MAX_BODY_BYTES; default 8 MiB)",
    )
    add(
        "--max-record-bytes",
        type=int,
        default=int(env("MINIMQ_MAX_RECORD_BYTES") or MIB),
        help="largest record: key + value + headers (env MINIMQ_MAX_RECORD_BYTES; default 1 MiB)",
    )
    add(
        "--request-timeout",
        type=float,
        default=float(env("MINIMQ_REQUEST_TIMEOUT") or 30),
        help="seconds a client may take to send its body (env MINIMQ_REQUEST_TIMEOUT)",
    )
    add(
        "--session-timeout-ms",
        type=int,
        default=int(env("MINIMQ_SESSION_TIMEOUT_MS") or 10_000),
        help="group member session timeout (env MINIMQ_SESSION_TIMEOUT_MS; default 10000)",
    )
    add(
        "--max-connections",
        type=int,
        default=int(env("MINIMQ_MAX_CONNECTIONS") or 1024),
        help="open client connections, slow ones included (env MINIMQ_MAX_CONNECTIONS)",
    )
    add(
        "--no-auto-create-topics",
        action="store_true",
        default=env("MINIMQ_NO_AUTO_CREATE_TOPICS", "") not in ("", "0", "false"),
        help="produce to an unknown topic is a 404 (env MINIMQ_NO_AUTO_CREATE_TOPICS)",
    )
    add(
        "--retention-check-interval",
        type=float,
        default=float(env("MINIMQ_RETENTION_CHECK_INTERVAL") or 60),
        help="seconds between retention checks (env MINIMQ_RETENTION_CHECK_INTERVAL)",
    )
    add(
        "--message-timestamp-before-max-ms",
        type=int,
        default=int(env("MINIMQ_MESSAGE_TIMESTAMP_BEFORE_MAX_MS") or DEFAULT_BEFORE_MAX_MS),
        help="refuse records stamped more than this before broker time, for topics that set"
        " no bound (env MINIMQ_MESSAGE_TIMESTAMP_BEFORE_MAX_MS; default %(default)s;"
        f" {UNBOUNDED_MS} means no bound)",
    )
    add(
        "--message-timestamp-after-max-ms",
        type=int,
        default=int(env("MINIMQ_MESSAGE_TIMESTAMP_AFTER_MAX_MS") or DEFAULT_AFTER_MAX_MS),
        help="refuse records stamped more than this after broker time, for topics that set"
        " no bound (env MINIMQ_MESSAGE_TIMESTAMP_AFTER_MAX_MS; default %(default)s)",
    )
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> BrokerConfig:
    positive = {
        "--port": args.port,
        "--default-partitions": args.default_partitions,
        "--max-body-bytes": args.max_body_bytes,
        "--max-record-bytes": args.max_record_bytes,
        "--session-timeout-ms": args.session_timeout_ms,
        "--max-connections": args.max_connections,
    }
    for flag, value in positive.items():
        if value <= 0:
            raise InvalidConfig(f"{flag} must be positive, not {value}")
    if args.request_timeout <= 0 or args.retention_check_interval <= 0:
        raise InvalidConfig("--request-timeout and --retention-check-interval must be positive")
    bounds = {
        "--message-timestamp-before-max-ms": args.message_timestamp_before_max_ms,
        "--message-timestamp-after-max-ms": args.message_timestamp_after_max_ms,
    }
    for flag, value in bounds.items():
        if not 0 <= value <= UNBOUNDED_MS:
            raise InvalidConfig(f"{flag} must be 0-{UNBOUNDED_MS}, not {value}")
    return BrokerConfig(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        fsync=FsyncPolicy.parse(args.fsync),
        token=args.token or None,
        log_level=args.log_level.upper(),
        default_partitions=args.default_partitions,
        max_body_bytes=args.max_body_bytes,
        max_record_bytes=args.max_record_bytes,
        request_timeout_s=args.request_timeout,
        session_timeout_ms=args.session_timeout_ms,
        max_connections=args.max_connections,
        auto_create_topics=not args.no_auto_create_topics,
        retention_check_interval_s=args.retention_check_interval,
        message_timestamp_before_max_ms=args.message_timestamp_before_max_ms,
        message_timestamp_after_max_ms=args.message_timestamp_after_max_ms,
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = config_from_args(args)
    except InvalidConfig as exc:
        logging.getLogger("minimq.broker").error("invalid configuration: %s", exc.message)
        return 2
    return uvloop.run(serve(config))
