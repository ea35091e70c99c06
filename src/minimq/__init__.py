"""MiniMQ: a lightweight, durable pub/sub log with an HTTP/JSON API.

The package is layered (see ``docs/architecture.md``)::

    ui   producer   cli
       \\     |     /
         client              never imports server, core or storage
            |  HTTP/JSON
         server              thin aiohttp transport
            |
          core               Broker facade: topics, produce, fetch, groups
            |
         storage             segments, indexes, record batches, recovery
"""

__version__ = "0.1.0"
