"""Every way to produce refuses a value that is not strict JSON, before sending anything.

Before: ``produce(t, 10**23)`` raised orjson's bare ``TypeError`` and
``produce(t, float("nan"))`` stored ``null``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from minimq.client import AsyncClient, Client, Producer
from minimq.errors import InvalidRequest, TopicNotFound
from tests.support.processes import BrokerProcess, free_port


@pytest.mark.parametrize(
    ("produce", "message"),
    [
        (lambda c: c.produce("t", 10**23), "value: integer outside the 64-bit range"),
        (lambda c: c.produce("t", {"v": math.nan}), "value['v']: NaN is not valid JSON"),
        (lambda c: c.produce("t", 1, timestamp=2**70), "timestamp: integer outside"),
        (lambda c: c.produce("t", 1, headers={"h": math.inf}), "headers['h']: Infinity"),
        (lambda c: c.produce_batch("t", [{"value": 1}, {"value": {2: 3}}]), "value: object key 2"),
    ],
)
def test_client_refuses_before_sending(produce: Any, message: str) -> None:
    # Nothing listens on this port: anything sent would fail as BROKER_UNAVAILABLE.
    with (
        Client(f"http://127.0.0.1:{free_port()}", retries=0) as client,
        pytest.raises(InvalidRequest) as refused,
    ):
        produce(client)
    assert refused.value.message.startswith(message)


async def test_async_client_refuses_before_sending() -> None:
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", retries=0) as client:
        with pytest.raises(InvalidRequest, match="value: integer outside the 64-bit range"):
            await client.produce("t", 10**23)
        with pytest.raises(InvalidRequest, match="Infinity is not valid JSON"):
            await client.produce_batch("t", [{"value": [math.inf]}])


def test_producer_refuses_in_send_and_buffers_nothing() -> None:
    with Producer(f"http://127.0.0.1:{free_port()}", retries=0) as producer:
        with pytest.raises(InvalidRequest, match="value: NaN is not valid JSON"):
            producer.send("t", math.nan)
        with pytest.raises(InvalidRequest, match="value: set is not a JSON type"):
            producer.send("t", {1, 2})
        assert producer.buffered == 0


def test_nan_is_refused_by_a_real_broker_and_nothing_is_stored(
    shared_broker: BrokerProcess,
) -> None:
    with Client(shared_broker.url) as client:
        for value in (math.nan, {"v": math.inf}, 10**23):
            with pytest.raises(InvalidRequest):
                client.produce("never-created", value)
        with pytest.raises(TopicNotFound):
            client.describe_topic("never-created")
