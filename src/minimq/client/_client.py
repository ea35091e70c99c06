"""The synchronous client: one method per v1 endpoint over a ``urllib3`` connection pool.

Transport: a ``urllib3.HTTPConnectionPool`` (``HTTPSConnectionPool`` for
``https://``) to the broker, keeping up to ``max_connections`` keep-alive
connections.  Chosen over ``httpx.Client`` and a hand-kept ``http.client``
connection after measuring one small produce round trip against a local
broker (``bench/client.py``, p50): httpx 0.91 ms, urllib3 0.49 ms,
``http.client`` 0.40 ms.  urllib3 is within 0.1 ms of the bare standard
library while providing what the client needs: a thread-safe pool, connect
and read timeouts, streaming bodies and TLS.  Its own retries and redirects
are switched off; retrying, and failing over to another broker URL, is
:mod:`minimq.client._failover`'s job.  Each broker URL has its own pool.

Concurrency contract: a ``Client`` is thread-safe (urllib3's pool is), so one
instance may be shared by many threads; each call borrows a pooled keep-alive
connection (a thread finding none free opens one more, which is dropped
afterwards if the pool is full).  ``stream()`` holds its own connection until
the iterator is closed or exhausted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError

from minimq.client import _calls
from minimq.client._calls import UNCHANGED, Call, OffsetSpec, ResetTarget, Setting
from minimq.client._failover import BrokerList, CallAttempts
from minimq.client._models import (
    FetchResult,
    GroupFetchResult,
    GroupInfo,
    GroupMembership,
    GroupSummary,
    Record,
    RecordMetadata,
    TopicInfo,
)
from minimq.client._raw_fetch import RawFetchPage
from minimq.client._sse import SSEDecoder
from minimq.client._stream_position import StreamPosition
from minimq.client._transport import (
    Failure,
    RetryPolicy,
    decode_body,
    encode_body,
    error_from_body,
    read_timeout,
    request_headers,
)

# Errors raised before a single byte of the request went out (NewConnectionError,
# a refused or unresolvable connect, is a ConnectTimeoutError for urllib3 too).
_NOT_SENT = (ConnectTimeoutError, NewConnectionError)

T = TypeVar("T")

DEFAULT_BROKER_URL = "http://localhost:5000"

# A stream without its own timeout still gives up on a connection that sent
# nothing, not even the broker's keep-alive every 15 s, for this long: the
# broker is gone without closing it (a host lost), so the stream fails over.
STREAM_SILENCE_LIMIT = 45.0


class Client:
    """Talks to a broker, or to any of several interchangeable ones.

    ``base_url`` is one broker URL, or several (a sequence, or one string of
    comma-separated URLs such as ``"http://a:5000,http://b:5000"``): gateways
    over one cluster.  Calls stick to one of them and move to the next when it
    fails, resending a call only where that is safe (see
    :mod:`minimq.client._failover`).  A malformed URL raises ``ValueError``.

    Broker errors raise the typed :mod:`minimq.errors` classes; no broker
    answering raises :class:`~minimq.errors.BrokerUnavailable` naming every
    URL tried, and a call that is not safe to resend and got no answer raises
    :class:`~minimq.errors.OutcomeUnknown`.

    ``timeout`` bounds connecting, sending and waiting for each answer (long
    polls add their ``wait_ms``); ``retries`` is how many more attempts a call
    gets, with backoff, after it was tried once on every URL.
    """

    def __init__(
        self,
        base_url: str | Sequence[str] = DEFAULT_BROKER_URL,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        max_connections: int = 20,
    ) -> None:
        self._brokers = BrokerList(base_url)
        self.timeout = timeout
        self._retry = RetryPolicy(retries=retries)
        self._headers = request_headers(token)
        self._prefixes = [urllib3.util.parse_url(url).path or "" for url in self._brokers.urls]
        self._pools = [
            urllib3.connection_from_url(url, maxsize=max_connections, block=False, retries=False)
            for url in self._brokers.urls
        ]

    @property
    def base_url(self) -> str:
        """The broker URL calls go to now (the first one until it fails)."""
        return self._brokers.urls[self._brokers.current]

    @property
    def base_urls(self) -> tuple[str, ...]:
        """Every broker URL this client may use, in the order it tries them."""
        return self._brokers.urls

    def close(self) -> None:
        for pool in self._pools:
            pool.close()

    def _target(self, index: int, path: str, params: Mapping[str, _calls.QueryValue]) -> str:
        # Paths come from _calls with every segment already percent-encoded.
        prefix = self._prefixes[index]
        return f"{prefix}{path}?{urlencode(params)}" if params else prefix + path

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        content, content_headers = encode_body(call)
        headers = {**self._headers, **content_headers}
        timeout = urllib3.Timeout(connect=self.timeout, read=read_timeout(self.timeout, call))
        attempts = CallAttempts(self._brokers, self._retry, call)
        while True:
            index = attempts.target()
            delay: float | None
            try:
                response = self._pools[index].urlopen(
                    call.method,
                    self._target(index, call.path, call.params),
                    body=content,
                    headers=headers,
                    timeout=timeout,
                    redirect=False,
                )
            except HTTPError as exc:
                failure = (
                    Failure.NOT_SENT if isinstance(exc, _NOT_SENT) else Failure.MAYBE_PROCESSED
                )
                delay = attempts.after_error(index, failure, exc)
            else:
                delay = attempts.after_status(index, response.status)
                if delay is None:
                    return decode_body(call, response.status, response.reason or "", response.data)
            time.sleep(delay)

    def health(self) -> dict[str, Any]:
        return self._send(_calls.health())

    def list_topics(self) -> list[TopicInfo]:
        return self._send(_calls.list_topics())

    def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
        segment_bytes: int | None = None,
        fsync: str | None = None,
        message_timestamp_before_max_ms: int | None = None,
        message_timestamp_after_max_ms: int | None = None,
    ) -> TopicInfo:
        return self._send(
            _calls.create_topic(
                name,
                partitions=partitions,
                retention_ms=retention_ms,
                retention_bytes=retention_bytes,
                segment_bytes=segment_bytes,
                fsync=fsync,
                message_timestamp_before_max_ms=message_timestamp_before_max_ms,
                message_timestamp_after_max_ms=message_timestamp_after_max_ms,
            )
        )

    def describe_topic(self, name: str) -> TopicInfo:
        return self._send(_calls.describe_topic(name))

    def update_topic(
        self,
        name: str,
        *,
        retention_ms: Setting = UNCHANGED,
        retention_bytes: Setting = UNCHANGED,
    ) -> TopicInfo:
        """Change the topic's retention: the settings given (``None``: unlimited).

        Settings not given keep their value; the broker applies the new ones at
        its next retention pass.
        """
        return self._send(
            _calls.update_topic(name, retention_ms=retention_ms, retention_bytes=retention_bytes)
        )

    def set_retention(
        self, name: str, *, retention_ms: int | None, retention_bytes: int | None
    ) -> TopicInfo:
        """Set both retention settings (``None``: unlimited)."""
        return self.update_topic(name, retention_ms=retention_ms, retention_bytes=retention_bytes)

    def delete_topic(self, name: str) -> None:
        self._send(_calls.delete_topic(name))

    def produce(
        self,
        topic: str,
        value: Any,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
        idempotency_key: str | None = None,
    ) -> RecordMetadata:
        record = {
            "value": value,
            "key": key,
            "headers": headers,
            "partition": partition,
            "timestamp": timestamp,
        }
        return self.produce_batch(topic, [record], idempotency_key=idempotency_key)[0]

    def produce_batch(
        self,
        topic: str,
        records: Sequence[Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[RecordMetadata]:
        """Append ``records`` in one request (one batch per partition); metadata in request order.

        With ``idempotency_key`` (1-255 visible ASCII characters, new for every
        new request) the broker stores the batch once however often it is
        sent, and this client retries it whenever the outcome is unknown.
        """
        return self._send(_calls.produce_batch(topic, records, idempotency_key))

    def fetch(
        self,
        topic: str,
        partition: int = 0,
        *,
        offset: OffsetSpec = "earliest",
        timestamp: int | None = None,
        limit: int = 100,
        max_bytes: int | None = None,
        wait_ms: int = 0,
    ) -> FetchResult:
        return self._send(
            _calls.fetch(
                topic,
                partition,
                offset=offset,
                timestamp=timestamp,
                limit=limit,
                max_bytes=max_bytes,
                wait_ms=wait_ms,
            )
        )

    def fetch_raw(
        self,
        topic: str,
        partition: int = 0,
        *,
        offset: int,
        limit: int = 100,
        max_bytes: int | None = None,
    ) -> RawFetchPage:
        """A fetch whose records are left undecoded (:class:`RawFetchPage`), for scans."""
        return self._send(
            _calls.fetch_raw(topic, partition, offset=offset, limit=limit, max_bytes=max_bytes)
        )

    def join_group(
        self,
        group: str,
        topic: str,
        member_id: str | None = None,
        *,
        assignor: str | None = None,
    ) -> GroupMembership:
        """Join ``group`` to read ``topic`` (a new member id when none is given).

        Returns the member id, the group's generation and the member's
        partitions. Joining again as a member learns the current generation.
        """
        return self._send(_calls.join_group(group, topic, member_id, assignor))

    def group_fetch(
        self,
        group: str,
        topic: str,
        *,
        member_id: str | None = None,
        generation: int | None = None,
        limit: int = 100,
        wait_ms: int = 0,
        commit: bool = False,
        auto_offset_reset: str = "earliest",
    ) -> GroupFetchResult:
        """Records for ``member_id`` (a read without membership when None).

        With ``generation`` the fetch is refused (``StaleGeneration``) once
        that generation is over, instead of being served in the new one.
        """
        return self._send(
            _calls.group_fetch(
                group,
                topic,
                member_id=member_id,
                generation=generation,
                limit=limit,
                wait_ms=wait_ms,
                commit=commit,
                auto_offset_reset=auto_offset_reset,
            )
        )

    def commit(
        self,
        group: str,
        offsets: Sequence[tuple[str, int, int]],
        *,
        member_id: str | None = None,
        generation: int | None = None,
    ) -> None:
        """Durably store ``(topic, partition, next offset to read)`` positions for ``group``.

        A member commits with its ``generation``, only partitions it owns;
        without ``member_id`` the group must have no live members.
        """
        self._send(_calls.commit(group, offsets, member_id=member_id, generation=generation))

    def heartbeat(
        self, group: str, topic: str, member_id: str, generation: int | None = None
    ) -> GroupMembership:
        """Keep ``member_id`` alive in ``group`` (joining it if new and no generation is given)."""
        return self._send(_calls.heartbeat(group, topic, member_id, generation))

    def leave_group(self, group: str, topic: str, member_id: str) -> None:
        self._send(_calls.leave_group(group, topic, member_id))

    def list_groups(self) -> list[GroupSummary]:
        return self._send(_calls.list_groups())

    def describe_group(self, group: str) -> GroupInfo:
        return self._send(_calls.describe_group(group))

    def reset_group(
        self,
        group: str,
        topic: str,
        *,
        to: ResetTarget,
        offset: int | None = None,
        timestamp: int | None = None,
        partition: int | None = None,
    ) -> GroupInfo:
        return self._send(
            _calls.reset_group(
                group, topic, to=to, offset=offset, timestamp=timestamp, partition=partition
            )
        )

    def delete_group(self, group: str) -> None:
        self._send(_calls.delete_group(group))

    def stream(
        self,
        topic: str,
        *,
        start: OffsetSpec = "latest",
        partition: int | None = None,
        timeout: float | None = None,
    ) -> Iterator[Record]:
        """Records of ``topic`` as they are appended (server-sent events).

        The iteration ends when the broker closes the stream or, with
        ``timeout``, once no record arrived for ``timeout`` seconds; since a
        blocking read can only be bounded per read, it may end up to
        ``min(timeout, 15)`` seconds later (the broker's keep-alive period).
        A connection that breaks is opened again, on the next broker URL when
        there are several, carrying on after the last record delivered
        (:mod:`minimq.client._stream_position`).  Closing the generator
        (``close()``, ``break`` in a ``with contextlib.closing(...)``, garbage
        collection) closes the connection.
        """
        position = StreamPosition(topic, start, partition)
        if position.needs_end_offsets:
            position.start_at_ends(self.describe_topic(topic))
        # The failover rules of a read; started afresh whenever records arrive.
        attempts = CallAttempts(self._brokers, self._retry, _calls.stream_call(topic))
        while True:
            index = attempts.target()
            path, params = position.request()
            silence = STREAM_SILENCE_LIMIT if timeout is None else timeout
            try:
                response = self._pools[index].urlopen(
                    "GET",
                    self._target(index, path, params),
                    headers=self._headers,
                    timeout=urllib3.Timeout(connect=self.timeout, read=silence),
                    redirect=False,
                    preload_content=False,
                )
            except HTTPError as exc:
                time.sleep(attempts.after_error(index, Failure.NOT_SENT, exc))
                continue
            try:
                if response.status >= 400:
                    delay = attempts.after_status(index, response.status)
                    if delay is None:
                        raise error_from_body(
                            response.status, response.reason or "", response.read()
                        )
                    time.sleep(delay)
                    continue
                decoder = SSEDecoder()
                deadline = None if timeout is None else time.monotonic() + timeout
                while chunk := response.read1(65536):
                    records = position.admit(decoder.feed_bytes(chunk))
                    yield from records
                    if records:
                        attempts = attempts.restarted()
                        deadline = None if timeout is None else time.monotonic() + timeout
                    elif deadline is not None and time.monotonic() >= deadline:
                        return
                return
            except ReadTimeoutError as exc:
                if timeout is not None:
                    return
                time.sleep(attempts.after_error(index, Failure.MAYBE_PROCESSED, exc))
            except HTTPError as exc:
                time.sleep(attempts.after_error(index, Failure.MAYBE_PROCESSED, exc))
            finally:
                # An unfinished event stream cannot be reused: close it, then give
                # the (now closed) connection's slot back to the pool.
                response.close()
                response.release_conn()
