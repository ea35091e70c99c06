"""Hooks through which the core reports traffic, so transports can keep metrics."""

from __future__ import annotations

from typing import Protocol


class BrokerObserver(Protocol):
    def appended(self, topic: str, records: int, size: int, seconds: float) -> None:
        """One batch of ``records`` (``size`` bytes) met the fsync policy after ``seconds``."""

    def fetched(self, topic: str, records: int, size: int) -> None:
        """Records were handed to a consumer (fetch, group fetch, consume or stream)."""


class NullObserver:
    def appended(self, topic: str, records: int, size: int, seconds: float) -> None:
        return

    def fetched(self, topic: str, records: int, size: int) -> None:
        return
