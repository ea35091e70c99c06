"""MiniMQ's distributed storage backend on a replicated NATS JetStream cluster.

Many stateless broker processes (gateways) share one namespace of one cluster; see
:mod:`minimq.jetstream.partition_log` for how produce calls stay atomic and ordered and how reads
avoid stale followers, and :mod:`minimq.jetstream.names` for the layout of streams, subjects
and buckets.
"""

from minimq.jetstream.storage import JetStreamStorage, open_jetstream_storage

__all__ = ["JetStreamStorage", "open_jetstream_storage"]
