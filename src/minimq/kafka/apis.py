"""The table of Kafka APIs this broker serves: API key -> handler and version range.

ApiVersions answers from this table, so an API is advertised exactly when a
handler for it is listed here, at exactly the versions it declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from minimq.kafka import (
    api_versions,
    configs,
    fetch,
    group_handlers,
    list_offsets,
    metadata,
    produce,
    producer_ids,
    sasl,
    topic_admin,
)
from minimq.kafka.registry import ApiHandler


def _table(handlers: Iterable[ApiHandler]) -> Mapping[int, ApiHandler]:
    table: dict[int, ApiHandler] = {}
    for handler in handlers:
        if handler.api_key in table:
            raise RuntimeError(f"two handlers for Kafka API key {handler.api_key}")
        table[handler.api_key] = handler
    return MappingProxyType(table)


APIS: Final = _table(
    (
        *api_versions.HANDLERS,
        *metadata.HANDLERS,
        *produce.HANDLERS,
        *fetch.HANDLERS,
        *list_offsets.HANDLERS,
        *topic_admin.HANDLERS,
        *configs.HANDLERS,
        *producer_ids.HANDLERS,
        *sasl.HANDLERS,
        *group_handlers.HANDLERS,
    )
)
