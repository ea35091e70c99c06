"""The asyncio client: the same methods as :class:`~minimq.client.Client`, awaitable.

Concurrency contract: an ``AsyncClient`` belongs to the event loop it is first
used on; any number of tasks on that loop may call it concurrently (each call
borrows a pooled keep-alive connection).  ``stream()`` is an async iterator
holding its own connection until it is closed (``aclose()``) or exhausted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from minimq.client import _calls
from minimq.client._calls import Call, OffsetSpec, ResetTarget
from minimq.client._client import DEFAULT_BROKER_URL
from minimq.client._models import (
    FetchResult,
    GroupFetchResult,
    GroupInfo,
    GroupSummary,
    Record,
    RecordMetadata,
    TopicInfo,
)
from minimq.client._sse import SSEDecoder
from minimq.client._transport import (
    RetryPolicy,
    decode_response,
    encode_body,
    error_from_response,
    read_timeout,
    request_headers,
    unavailable,
)

T = TypeVar("T")


class AsyncClient:
    """Async twin of :class:`~minimq.client.Client`; see it for errors, timeouts and retries."""

    def __init__(
        self,
        base_url: str = DEFAULT_BROKER_URL,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._retry = RetryPolicy(retries=retries)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=request_headers(token), timeout=timeout
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(self, call: Call[T]) -> T:
        content, headers = encode_body(call)
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=content,
                    headers=headers,
                    timeout=read_timeout(self.timeout, call),
                )
            except httpx.HTTPError as exc:
                delay = self._retry.delay_after_error(call, exc, attempt)
                if delay is None:
                    raise unavailable(self.base_url, exc) from exc
            else:
                delay = self._retry.delay_after_status(call, response.status_code, attempt)
                if delay is None:
                    return decode_response(call, response)
            await asyncio.sleep(delay)
            attempt += 1

    async def health(self) -> dict[str, Any]:
        return await self._send(_calls.health())

    async def list_topics(self) -> list[TopicInfo]:
        return await self._send(_calls.list_topics())

    async def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
        segment_bytes: int | None = None,
        fsync: str | None = None,
    ) -> TopicInfo:
        return await self._send(
            _calls.create_topic(
                name,
                partitions=partitions,
                retention_ms=retention_ms,
                retention_bytes=retention_bytes,
                segment_bytes=segment_bytes,
                fsync=fsync,
            )
        )

    async def describe_topic(self, name: str) -> TopicInfo:
        return await self._send(_calls.describe_topic(name))

    async def delete_topic(self, name: str) -> None:
        await self._send(_calls.delete_topic(name))

    async def produce(
        self,
        topic: str,
        value: Any,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> RecordMetadata:
        record = {
            "value": value,
            "key": key,
            "headers": headers,
            "partition": partition,
            "timestamp": timestamp,
        }
        return (await self.produce_batch(topic, [record]))[0]

    async def produce_batch(
        self, topic: str, records: Sequence[Mapping[str, Any]]
    ) -> list[RecordMetadata]:
        return await self._send(_calls.produce_batch(topic, records))

    async def fetch(
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
        return await self._send(
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

    async def group_fetch(
        self,
        group: str,
        topic: str,
        *,
        member_id: str | None = None,
        limit: int = 100,
        wait_ms: int = 0,
        commit: bool = False,
        auto_offset_reset: str = "earliest",
    ) -> GroupFetchResult:
        return await self._send(
            _calls.group_fetch(
                group,
                topic,
                member_id=member_id,
                limit=limit,
                wait_ms=wait_ms,
                commit=commit,
                auto_offset_reset=auto_offset_reset,
            )
        )

    async def commit(
        self,
        group: str,
        offsets: Sequence[tuple[str, int, int]],
        *,
        member_id: str | None = None,
    ) -> None:
        await self._send(_calls.commit(group, offsets, member_id=member_id))

    async def heartbeat(self, group: str, topic: str, member_id: str) -> list[int]:
        return await self._send(_calls.heartbeat(group, topic, member_id))

    async def leave_group(self, group: str, topic: str, member_id: str) -> None:
        await self._send(_calls.leave_group(group, topic, member_id))

    async def list_groups(self) -> list[GroupSummary]:
        return await self._send(_calls.list_groups())

    async def describe_group(self, group: str) -> GroupInfo:
        return await self._send(_calls.describe_group(group))

    async def reset_group(
        self,
        group: str,
        topic: str,
        *,
        to: ResetTarget,
        offset: int | None = None,
        timestamp: int | None = None,
        partition: int | None = None,
    ) -> GroupInfo:
        return await self._send(
            _calls.reset_group(
                group, topic, to=to, offset=offset, timestamp=timestamp, partition=partition
            )
        )

    async def delete_group(self, group: str) -> None:
        await self._send(_calls.delete_group(group))

    async def stream(
        self,
        topic: str,
        *,
        start: OffsetSpec = "latest",
        partition: int | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[Record]:
        """Records of ``topic`` as they are appended (server-sent events).

        Ends when the broker closes the stream or, with ``timeout``, as soon as
        no record arrived for ``timeout`` seconds.  ``aclose()`` closes the
        connection.
        """
        path, params = _calls.stream_request(topic, start=start, partition=partition)
        decoder = SSEDecoder()
        try:
            async with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(self.timeout, read=None)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from_response(response)
                lines = response.aiter_lines()
                while True:
                    try:
                        async with asyncio.timeout(timeout):
                            record = await _next_record(lines, decoder)
                    except TimeoutError:
                        return
                    if record is None:
                        return
                    yield record
        except httpx.HTTPError as exc:
            raise unavailable(self.base_url, exc) from exc


async def _next_record(lines: AsyncIterator[str], decoder: SSEDecoder) -> Record | None:
    """The next record event, or ``None`` when the stream ended."""
    async for line in lines:
        record = decoder.feed(line)
        if record is not None:
            return record
    return None
