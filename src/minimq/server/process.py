"""Running the broker process: open storage, serve HTTP and Kafka, shut down cleanly.

This is the composition root: the only module of the server that knows the
storage backends.  ``--backend`` empty opens the data directory (the disk
engine, :mod:`minimq.storage`); ``--backend nats://...`` opens the JetStream
backend (:mod:`minimq.jetstream`, imported only then, so a broker on disk
needs none of its dependencies).  Everything else sees the storage seam.

The Kafka listener (``--kafka-port``, 0 = off) is bound before the HTTP one,
so once ``/healthz`` answers, both transports are up.

Shutdown on SIGINT/SIGTERM: stop listening, end long-polls and streams, let
in-flight requests finish (bounded by ``shutdown_timeout_s``), then flush,
fsync and close the storage, which releases the data directory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid

from aiohttp import web

from minimq.core import Broker
from minimq.core.storage_seam import GatewayAddress, Storage
from minimq.errors import MiniMQError, StorageError
from minimq.kafka import KafkaListener
from minimq.server.app import create_app
from minimq.server.config import BrokerConfig
from minimq.server.connection_limit import ConnectionLimiter
from minimq.server.gate import RequestGate
from minimq.server.metrics import BrokerMetrics
from minimq.server.produce_lane import ProduceLane
from minimq.server.tuning import raise_open_file_limit, tune_for_serving
from minimq.storage import StorageLimits, open_storage

log = logging.getLogger("minimq.broker")

# How long an idle keep-alive connection stays open, in aiohttp and in the produce lane.
KEEPALIVE_TIMEOUT_S = 75.0
# How often silent group members are checked for an expired session.
SESSION_SWEEP_INTERVAL_S = 0.5


async def serve(config: BrokerConfig) -> int:
    """Run the broker until SIGINT/SIGTERM; return the process exit code."""
    if config.exposed_without_token:
        log.warning(
            "!!! listening on %s WITHOUT a token: anyone who can reach this port can read,"
            " write and delete every topic. Set --token / MINIMQ_TOKEN. !!!",
            config.host,
        )
    raise_open_file_limit()
    try:
        storage = await open_backend(config)
    except StorageError as exc:
        where = config.nats_servers
        if where is None:
            log.error("cannot open data directory %s: %s", config.data_dir, exc.message)
        else:
            log.error("cannot open the JetStream backend at %s: %s", ",".join(where), exc.message)
        return 1
    metrics = BrokerMetrics()
    broker = Broker(storage, config.broker_settings, metrics)
    metrics.watch_group_lag(broker.groups.lags)
    gate = RequestGate(config.max_connections, config.token)
    runner = web.AppRunner(
        create_app(broker, config, metrics, gate),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=config.shutdown_timeout_s,
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
    )
    lane = ProduceLane(
        broker,
        metrics,
        gate,
        max_body_bytes=config.max_body_bytes,
        request_timeout_s=config.request_timeout_s,
        keepalive_timeout_s=KEEPALIVE_TIMEOUT_S,
    )
    await runner.setup()
    tune_for_serving()
    assert runner.server is not None
    kafka = KafkaListener(
        broker,
        config.kafka_settings,
        body_timeout_s=config.request_timeout_s,
        write_timeout_s=config.write_timeout_s,
    )
    # Before either listener takes a request: from the first one on, a group is served here
    # only under its ownership lease (a no-op over the data directory: this process owns all).
    ownership = broker.groups.ownership
    kafka_host, kafka_port = kafka.advertised if config.kafka_port else ("", 0)
    ownership.start(
        GatewayAddress(config.http_url, kafka_host, kafka_port, uuid.uuid4().hex),
        config.group_lease_ms / 1000,
    )
    if config.kafka_port:
        try:
            await kafka.start()
        except OSError as exc:
            log.error(
                "cannot listen for Kafka on %s:%d: %s (--kafka-port 0 turns it off)",
                config.host,
                config.kafka_port,
                exc.strerror or exc,
            )
            await runner.cleanup()
            await broker.close()
            return 1
    try:
        # Not web.TCPSite: the limiter must see every accepted connection, also
        # those still sending their headers, which aiohttp's handlers never see.
        listener = await asyncio.get_running_loop().create_server(
            ConnectionLimiter(
                runner.server,
                lane,
                config.max_connections,
                per_address=config.max_connections_per_address,
                reserved=config.reserved_connections,
                head_timeout_s=config.header_timeout_s,
                gate=gate,
            ),
            config.host,
            config.port,
            backlog=1024,
            reuse_address=True,
        )
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror or exc)
        await kafka.stop(config.shutdown_timeout_s)
        await runner.cleanup()
        await broker.close()
        return 1
    log.info(
        "broker listening on http://%s:%d (backend: %s, %d topics, auth %s)",
        config.host,
        config.port,
        describe_backend(config),
        len(await broker.topic_names()),
        "on" if config.token else "off",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    housekeeping = [
        asyncio.create_task(_retention_loop(broker, config.retention_check_interval_s)),
        asyncio.create_task(_session_expiry_loop(broker)),
        asyncio.create_task(ownership.maintain()),
    ]
    await stop.wait()
    log.info("shutting down: finishing in-flight requests")
    for task in housekeeping:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    listener.close()
    # Kafka JoinGroup/SyncGroup calls wait up to a rebalance timeout (minutes):
    # answered now (COORDINATOR_NOT_AVAILABLE, the client retries elsewhere or
    # later), so they do not hold the shutdown for the whole timeout.
    broker.groups.kafka.close()
    # Side by side, so shutdown_timeout_s bounds them all, as it bounded aiohttp's alone.
    await asyncio.gather(
        lane.shutdown(config.shutdown_timeout_s),
        runner.cleanup(),
        kafka.stop(config.shutdown_timeout_s),
    )
    # Nothing is served any more: other brokers may coordinate this one's groups at once.
    await ownership.release_all()
    await broker.close()
    log.info("broker stopped; data flushed and fsynced")
    return 0


def describe_backend(config: BrokerConfig) -> str:
    """The backend as the start-up log names it."""
    servers = config.nats_servers
    if servers is None:
        return f"data dir {config.data_dir}, fsync {config.fsync}"
    return (
        f"JetStream {','.join(servers)}, replicas {config.replicas},"
        f" namespace {config.nats_namespace}"
    )


async def open_backend(config: BrokerConfig) -> Storage:
    """Open the storage backend ``config`` names (``StorageError`` if it cannot be)."""
    servers = config.nats_servers
    if servers is None:
        limits = {
            name: value
            for name in ("max_open_segment_files", "max_topics", "max_partitions")
            if (value := getattr(config, name)) is not None
        }
        return await open_storage(config.data_dir, config.fsync, StorageLimits(**limits))
    try:
        from minimq.jetstream import open_jetstream_storage  # noqa: PLC0415 (only when asked for)
    except ImportError as exc:
        missing = "the minimq.jetstream package" if exc.name == "minimq.jetstream" else exc.name
        raise StorageError(
            f"--backend {config.backend} needs the JetStream backend, but {missing} cannot be"
            f" imported ({exc}); install MiniMQ with nats-py (pip install nats-py)"
        ) from exc
    try:
        return await open_jetstream_storage(
            servers, replicas=config.replicas, namespace=config.nats_namespace
        )
    except (TimeoutError, OSError) as exc:
        raise StorageError(f"cannot reach the NATS cluster at {','.join(servers)}: {exc}") from exc


async def _session_expiry_loop(broker: Broker) -> None:
    # Requests to a group expire its members too; this sweep moves the partitions
    # of a member that went silent in a group nobody else is talking to either.
    while True:
        await asyncio.sleep(SESSION_SWEEP_INTERVAL_S)
        broker.groups.expire_sessions()


async def _retention_loop(broker: Broker, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await broker.apply_retention()
        except MiniMQError as exc:
            log.error("retention check failed: %s", exc.message)
