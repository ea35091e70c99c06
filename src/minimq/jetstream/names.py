"""Every NATS name the JetStream backend uses, derived from a namespace; reversible escaping.

Why escaping.  A MiniMQ topic or group name is free text to NATS: a ``.`` separates subject
tokens, ``*`` and ``>`` are wildcards, whitespace ends a protocol field, and KV keys allow only
``[-/_=.a-zA-Z0-9]``.  :func:`escape` turns any string into ``[A-Za-z0-9-]`` plus ``_xx`` escapes
(the lowercase hex of each UTF-8 byte of any other character, ``_`` included), which is one valid
subject token, one valid KV key token and a valid stream-name part; :func:`unescape` is its
inverse and refuses anything :func:`escape` cannot have produced, so a subject or key seen on the
wire maps back to exactly one name.

Why a namespace cannot be escaped out of.  The namespace (an operator setting,
``[A-Za-z0-9_-]{1,64}``, no dots) is the first token of every subject, and every stream and
bucket name is the namespace followed by a fixed-shape tail (``-<32 hex>-<digits>``,
``-topics``, ``-offsets``, ``-producer-ids``), so a name parsed from the right belongs to exactly
one namespace.  Requests supply only topic and group names, which go through :func:`escape`
into KV keys and one subject token, or never reach a NATS name at all (streams are named by a
topic id this backend generates), so nothing a request sends can name a stream, subject or
bucket of another namespace (or a NATS system subject).

Layout (``ns`` the namespace, ``id`` a topic incarnation's id, ``p`` the partition)::

    partition stream   ns-<id>-<p>                  one per partition of one topic incarnation
    its subjects       ns.rec.<id>.<p>.r            records of a call but the last
                       ns.rec.<id>.<p>.c            the last record of a call (batch commit)
    notification       ns.ntf.<escaped topic>.<p>   RePublish of .c only, headers only
    KV buckets         ns-topics, ns-offsets, ns-producer-ids

Streams are named by the topic's id, not its name: a topic deleted and created again gets new
streams, so a handle or a cached high-water mark of the old incarnation can never read the new
one, and stream names stay short whatever the topic name.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Final

from minimq.errors import InvalidConfig

_VERBATIM: Final = frozenset(string.ascii_letters + string.digits + "-")
_ESCAPED: Final = re.compile(r"(?:[A-Za-z0-9-]|_[0-9a-f]{2})*")
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOPIC_ID: Final = re.compile(r"[0-9a-f]{32}")


def escape(name: str) -> str:
    """``name`` as ``[A-Za-z0-9-]`` and ``_xx`` escapes: one subject token, KV-key safe."""
    out: list[str] = []
    for char in name:
        if char in _VERBATIM:
            out.append(char)
        else:
            out.extend(f"_{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def unescape(token: str) -> str:
    """The name :func:`escape` turned into ``token``; ``ValueError`` if it made no such token."""
    if not _ESCAPED.fullmatch(token):
        raise ValueError(f"not an escaped name: {token!r}")
    raw = bytearray()
    position = 0
    while position < len(token):
        if token[position] == "_":
            raw.append(int(token[position + 1 : position + 3], 16))
            position += 3
        else:
            raw.append(ord(token[position]))
            position += 1
    name = raw.decode("utf-8", "surrogatepass")
    if escape(name) != token:  # e.g. an escaped letter: escape() never writes "_61" for "a"
        raise ValueError(f"not a canonical escaped name: {token!r}")
    return name


@dataclass(frozen=True, slots=True)
class Names:
    """The streams, subjects and buckets of one namespace."""

    namespace: str

    def __post_init__(self) -> None:
        if not _NAMESPACE.fullmatch(self.namespace):
            raise InvalidConfig(
                f"a NATS namespace is 1-64 characters of A-Z a-z 0-9 _ -, not {self.namespace!r}"
            )

    def partition_stream(self, topic_id: str, partition: int) -> str:
        return f"{self.namespace}-{self._checked_id(topic_id)}-{partition}"

    def partition_subject(self, topic_id: str, partition: int) -> str:
        """The subject of every record of a call but its last (see :meth:`commit_subject`)."""
        return f"{self.namespace}.rec.{self._checked_id(topic_id)}.{partition}.r"

    def commit_subject(self, topic_id: str, partition: int) -> str:
        """The subject of the last record of each call (its batch's commit message).

        Only this subject is republished as a notification, so a call of 1,000 records costs
        every gateway one notification instead of 1,000 (each costs nats-py ~0.2 ms to parse).
        """
        return f"{self.namespace}.rec.{self._checked_id(topic_id)}.{partition}.c"

    def notification_subject(self, topic: str, partition: int) -> str:
        return f"{self.namespace}.ntf.{escape(topic)}.{partition}"

    @property
    def notification_wildcard(self) -> str:
        return f"{self.namespace}.ntf.>"

    def parse_notification(self, subject: str) -> tuple[str, int] | None:
        """``(topic, partition)`` of a notification subject, ``None`` if it is not one."""
        parts = subject.split(".")
        if len(parts) != 4 or parts[0] != self.namespace or parts[1] != "ntf":
            return None
        if not parts[3].isdigit():
            return None
        try:
            return unescape(parts[2]), int(parts[3])
        except ValueError:
            return None

    @property
    def topics_bucket(self) -> str:
        return f"{self.namespace}-topics"

    @property
    def offsets_bucket(self) -> str:
        return f"{self.namespace}-offsets"

    @property
    def producer_ids_bucket(self) -> str:
        return f"{self.namespace}-producer-ids"

    @staticmethod
    def _checked_id(topic_id: str) -> str:
        # Topic ids come from this backend's own metadata; checked anyway, since they end up in
        # stream names and subjects.
        if not TOPIC_ID.fullmatch(topic_id):
            raise ValueError(f"not a topic id: {topic_id!r}")
        return topic_id
