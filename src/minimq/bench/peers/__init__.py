"""The benchmarked brokers: MiniMQ, NATS JetStream and Redis Streams (see :mod:`.base`)."""

from minimq.bench.peers.base import Durability, Peer, Session
from minimq.bench.peers.minimq import MiniMQPeer
from minimq.bench.peers.nats import NatsPeer
from minimq.bench.peers.redis import RedisPeer


def all_peers() -> list[Peer]:
    """Every broker at its strongest durability setting and at its defaults.

    MiniMQ's own default is ``fsync=always``, already the strongest setting, so
    beside the peers' defaults it runs ``fsync=interval:1000``, the setting
    closest to Redis's ``appendfsync everysec`` and JetStream's periodic sync.
    MiniMQ over plain aiohttp (no client library) runs at the strongest setting
    only, where the targets are.
    """
    return [
        MiniMQPeer(Durability.STRONGEST, "always"),
        MiniMQPeer(Durability.STRONGEST, "always", raw_http=True),
        NatsPeer(Durability.STRONGEST, sync_always=True),
        RedisPeer(Durability.STRONGEST, "always"),
        MiniMQPeer(Durability.DEFAULTS, "interval:1000"),
        NatsPeer(Durability.DEFAULTS, sync_always=False),
        RedisPeer(Durability.DEFAULTS, "everysec"),
    ]


__all__ = ["Durability", "MiniMQPeer", "NatsPeer", "Peer", "RedisPeer", "Session", "all_peers"]
