"""Kafka's ConsumerProtocol bytes: a member's subscription and its assignment.

A JoinGroup of protocol type ``consumer`` carries a *subscription* per
assignor, and the leader's SyncGroup an *assignment* per member. The broker
never needs them to run the protocol (they are opaque bytes it passes on),
only to show who owns what: describe and lag read them here.

Layouts (big-endian, non-flexible; ``ConsumerProtocolSubscription.json`` and
``ConsumerProtocolAssignment.json`` in Kafka)::

    Subscription  version:int16  topics:[string]  user_data:bytes?
                  v1+ owned_partitions:[topic:string partitions:[int32]]
                  v2+ generation_id:int32   v3+ rack_id:string?
    Assignment    version:int16  assigned:[topic:string partitions:[int32]]  user_data:bytes?

A newer version than these is read as the newest known one (its extra fields
come last), as Kafka's clients do. Bytes that do not parse give None: a
client with its own protocol type is free to send anything.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")

TopicPartitions = dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class Subscription:
    version: int
    topics: list[str]
    user_data: bytes | None = None
    owned_partitions: TopicPartitions = field(default_factory=dict)
    generation_id: int = -1
    rack_id: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    version: int
    partitions: TopicPartitions
    user_data: bytes | None = None


class _Malformed(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._at = 0

    def _take(self, size: int) -> memoryview:
        if size < 0 or self._at + size > len(self._data):
            raise _Malformed
        piece = self._data[self._at : self._at + size]
        self._at += size
        return piece

    def int16(self) -> int:
        value: int = _I16.unpack(self._take(2))[0]
        return value

    def int32(self) -> int:
        value: int = _I32.unpack(self._take(4))[0]
        return value

    def string(self) -> str:
        text = self.nullable_string()
        if text is None:
            raise _Malformed
        return text

    def nullable_string(self) -> str | None:
        size = self.int16()
        if size == -1:
            return None
        try:
            return bytes(self._take(size)).decode()
        except UnicodeDecodeError:
            raise _Malformed from None

    def nullable_bytes(self) -> bytes | None:
        size = self.int32()
        return None if size == -1 else bytes(self._take(size))

    def count(self) -> int:
        size = self.int32()
        # Each element takes at least two bytes: a count beyond that is garbage.
        if size < 0 or size * 2 > len(self._data) - self._at:
            raise _Malformed
        return size

    def topic_partitions(self) -> TopicPartitions:
        found: TopicPartitions = {}
        for _ in range(self.count()):
            topic = self.string()
            found.setdefault(topic, []).extend(self.int32() for _ in range(self.count()))
        return found

    @property
    def done(self) -> bool:
        return self._at == len(self._data)


def decode_subscription(data: bytes) -> Subscription | None:
    try:
        reader = _Reader(data)
        version = reader.int16()
        if version < 0:
            return None
        topics = [reader.string() for _ in range(reader.count())]
        user_data = reader.nullable_bytes()
        owned: TopicPartitions = {}
        generation_id, rack_id = -1, None
        # Fields of newer versions are optional at the end (Kafka's readers
        # accept a v1+ subscription that stops after user_data).
        if version >= 1 and not reader.done:
            owned = reader.topic_partitions()
        if version >= 2 and not reader.done:
            generation_id = reader.int32()
        if version >= 3 and not reader.done:
            rack_id = reader.nullable_string()
    except _Malformed:
        return None
    return Subscription(version, topics, user_data, owned, generation_id, rack_id)


def decode_assignment(data: bytes) -> Assignment | None:
    """The assignment in ``data``; an empty one for empty bytes (a member given nothing)."""
    if not data:
        return Assignment(0, {})
    try:
        reader = _Reader(data)
        version = reader.int16()
        if version < 0:
            return None
        partitions = reader.topic_partitions()
        user_data = None if reader.done else reader.nullable_bytes()
    except _Malformed:
        return None
    return Assignment(version, partitions, user_data)


def _string(text: str) -> bytes:
    raw = text.encode()
    return _I16.pack(len(raw)) + raw


def _topic_partitions(partitions: TopicPartitions) -> bytes:
    out = [_I32.pack(len(partitions))]
    for topic, numbers in partitions.items():
        out.append(_string(topic) + _I32.pack(len(numbers)))
        out.extend(_I32.pack(n) for n in numbers)
    return b"".join(out)


def _nullable_bytes(data: bytes | None) -> bytes:
    return _I32.pack(-1) if data is None else _I32.pack(len(data)) + data


def encode_subscription(
    topics: Sequence[str], user_data: bytes | None = None, version: int = 0
) -> bytes:
    """A subscription as a client sends it (versions 0-3; tests and tools)."""
    out = [_I16.pack(version), _I32.pack(len(topics))]
    out.extend(_string(t) for t in topics)
    out.append(_nullable_bytes(user_data))
    if version >= 1:
        out.append(_topic_partitions({}))
    if version >= 2:
        out.append(_I32.pack(-1))
    if version >= 3:
        out.append(_I16.pack(-1))
    return b"".join(out)


def encode_assignment(
    partitions: TopicPartitions, user_data: bytes | None = None, version: int = 0
) -> bytes:
    """An assignment as a leader sends it (tests and tools)."""
    return _I16.pack(version) + _topic_partitions(partitions) + _nullable_bytes(user_data)
