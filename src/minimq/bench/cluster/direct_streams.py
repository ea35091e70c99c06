"""The streams of the direct (nats-py) measurements, configured like the gateway's.

Each direct "partition" is one stream with the configuration the JetStream backend gives a
partition stream (``minimq/jetstream/log_store.py``): replicas 3, file storage, limits
retention, ``allow_direct`` and ``allow_atomic``, a 2-minute duplicate window, two subjects
(the records of a call and its last, committing record) and a headers-only RePublish of the
commit subject. So the servers store, replicate, fsync and republish the same things for a
direct batch as for a gateway's, and the ratio of the two is the gateway's own cost.

The names live in the run's namespace but outside the gateway's layout
(``<ns>-direct-...``, subjects ``<ns>.direct...``), so they never collide with a topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

DUPLICATE_WINDOW_NS: Final = 120 * 1_000_000_000
API_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class DirectStream:
    name: str
    subject: str
    commit_subject: str
    notification_subject: str


def direct_stream(namespace: str, label: str, partition: int) -> DirectStream:
    token = f"{label}-{partition}"
    return DirectStream(
        name=f"{namespace}-direct-{token}",
        subject=f"{namespace}.direct.{token}.r",
        commit_subject=f"{namespace}.direct.{token}.c",
        notification_subject=f"{namespace}.directntf.{token}",
    )


def stream_config(stream: DirectStream, replicas: int) -> dict[str, Any]:
    return {
        "name": stream.name,
        "subjects": [stream.subject, stream.commit_subject],
        "num_replicas": replicas,
        "storage": "file",
        "retention": "limits",
        "discard": "old",
        "max_age": 0,
        "max_bytes": -1,
        "max_msgs": -1,
        "duplicate_window": DUPLICATE_WINDOW_NS,
        "allow_direct": True,
        "allow_atomic": True,
        "republish": {
            "src": stream.commit_subject,
            "dest": stream.notification_subject,
            "headers_only": True,
        },
    }


async def _api(nc: Any, operation: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    reply = await nc.request(f"$JS.API.{operation}", payload, timeout=API_TIMEOUT_S)
    answer: dict[str, Any] = json.loads(reply.data)
    if "error" in answer:
        raise RuntimeError(f"JetStream refused {operation}: {answer['error']}")
    return answer


async def create(nc: Any, stream: DirectStream, replicas: int) -> None:
    await _api(nc, f"STREAM.CREATE.{stream.name}", stream_config(stream, replicas))


async def delete(nc: Any, stream: DirectStream) -> None:
    await _api(nc, f"STREAM.DELETE.{stream.name}")
