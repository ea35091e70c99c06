"""``minimq bench``: MiniMQ measured side by side with NATS JetStream and Redis Streams.

Layout (one concept per module):

- :mod:`~minimq.bench.peers`: each broker as a local server process plus an
  asyncio driver built on its standard Python client (``minimq.client``,
  nats-py, redis-py), all behind the :class:`~minimq.bench.peers.base.Peer`
  protocol.
- :mod:`~minimq.bench.workloads`: the measurements, written once against that
  protocol so every broker runs exactly the same code.
- :mod:`~minimq.bench.kafka_workloads`: confluent-kafka produce and consume
  against MiniMQ's Kafka port (MiniMQ's column only).
- :mod:`~minimq.bench.cpu`: the broker's CPU time during a workload, for the
  *broker CPU per message* rows.
- :mod:`~minimq.bench.runner`: which broker at which durability setting runs
  which workload how often, within a time budget, with a progress bar.
- :mod:`~minimq.bench.targets`: the issue's performance targets, checked.
- :mod:`~minimq.bench.profiling`: py-spy recordings of the broker and the
  client (``minimq bench --profile``).
- :mod:`~minimq.bench.report` and :mod:`~minimq.bench.charts`: the markdown
  document and its PNG charts.

This package talks to brokers over the network only; it never imports the
broker's own modules (``minimq.server``, ``minimq.core``, ``minimq.storage``).
Its third-party dependencies are the ``bench`` extra, imported lazily through
:func:`~minimq.bench.deps.require`.
"""
