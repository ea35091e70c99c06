"""Messages and committed offsets survive a clean restart and a kill -9."""

from __future__ import annotations

import httpx

from tests.support.processes import BrokerProcess


def test_restart_keeps_messages_and_committed_offsets(broker: BrokerProcess) -> None:
    for i in range(10):
        httpx.post(f"{broker.url}/produce", json={"topic": "keep", "message": i})
    for _ in range(4):
        httpx.get(f"{broker.url}/consume", params={"topic": "keep", "consumer_id": "c"})
    httpx.post(
        f"{broker.url}/v1/groups/g/commit",
        json={"offsets": [{"topic": "keep", "partition": 0, "offset": 7}]},
    )
    broker.restart()
    fetched = httpx.get(f"{broker.url}/v1/topics/keep/partitions/0/records").json()
    assert [r["value"] for r in fetched["records"]] == list(range(10))
    next_one = httpx.get(f"{broker.url}/consume", params={"topic": "keep", "consumer_id": "c"})
    assert next_one.json() == {"message": 4, "offset": 4, "partition": 0}
    group = httpx.get(f"{broker.url}/v1/groups/g").json()
    assert group["offsets"][0]["committed_offset"] == 7


def test_kill_9_loses_no_acknowledged_produce_or_consume(broker: BrokerProcess) -> None:
    acknowledged = []
    with httpx.Client(base_url=broker.url) as client:
        for i in range(100):
            records = [{"value": {"i": i, "j": j}, "key": f"k{j}"} for j in range(5)]
            response = client.post("/v1/topics/crash/records", json={"records": records})
            assert response.status_code == 200
            acknowledged.extend(response.json()["offsets"])
        handed_out = [
            client.get("/consume", params={"topic": "crash", "consumer_id": "c"}).json()
            for _ in range(3)
        ]
    broker.kill()
    broker.start()
    with httpx.Client(base_url=broker.url) as client:
        info = client.get("/v1/topics/crash").json()
        assert info["messages"] == len(acknowledged) == 500
        after = client.get("/consume", params={"topic": "crash", "consumer_id": "c"}).json()
    assert [m["offset"] for m in handed_out] == [0, 1, 2]
    assert (after["partition"], after["offset"]) == (0, 3)
