"""The Kafka wire protocol: a second transport over :mod:`minimq.core`, beside HTTP.

A request handler decodes (with kio's generated schemas), makes one call on
the core, and encodes. :class:`KafkaListener` is what the broker process
starts; :mod:`minimq.kafka.apis` lists the APIs and versions served.
"""

from minimq.kafka.listener import KafkaListener
from minimq.kafka.settings import KafkaSettings

__all__ = ["KafkaListener", "KafkaSettings"]
