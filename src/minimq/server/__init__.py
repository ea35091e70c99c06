"""The broker's HTTP transport: aiohttp handlers over the ``minimq.core`` Broker."""

from minimq.server.app import create_app
from minimq.server.config import BrokerConfig
from minimq.server.process import serve

__all__ = ["BrokerConfig", "create_app", "serve"]
