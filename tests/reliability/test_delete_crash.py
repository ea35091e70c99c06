"""kill -9 during the deletion of a topic with commits: a topic created again inherits none.

Issue #17, defect 4.  Deleting a topic removes its log (renamed into
``trash/``, then its files removed) and then its committed offsets; a broker
killed in between used to keep the offsets, and a topic created again under
the same name inherited them (``/consume`` answered 204 with every message
unread).  Commits are now keyed by topic id, and the open removes those of
topic incarnations that are gone.

Each round: a topic with 256 partitions (so that removing its files takes a
while), commits of a group on it and of ``/consume`` consumers, then
``DELETE`` and kill -9 — in even rounds as soon as the topic's directory
has left ``topics/`` (the log is gone, its commits not yet: the window that
lost them), in odd rounds at a random moment within 250 ms of sending the
request (a deletion takes about 200 ms here, most of it closing
partitions).  After the restart the topic either survived with every
commit, or is gone; then it is created again and must have no commit at all.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from pathlib import Path

import httpx

from tests.reliability.conftest import scale
from tests.support.processes import BrokerProcess

TOPIC = "doomed"
PARTITIONS = 256
COMMITTED = 300
ROUNDS = scale(4, 30)


def _prepare(client: httpx.Client) -> None:
    created = client.post("/v1/topics", json={"name": TOPIC, "partitions": PARTITIONS})
    assert created.status_code == 201, created.text
    records = [{"value": n, "partition": n % PARTITIONS} for n in range(PARTITIONS * 2)]
    records += [{"value": n, "partition": 0} for n in range(COMMITTED + 100)]
    produced = client.post(f"/v1/topics/{TOPIC}/records", json={"records": records})
    assert produced.status_code == 200, produced.text
    commit = client.post(
        "/v1/groups/g/commit",
        json={"offsets": [{"topic": TOPIC, "partition": 0, "offset": COMMITTED}]},
    )
    assert commit.status_code == 200, commit.text
    for _ in range(3):
        assert (
            client.get("/consume", params={"topic": TOPIC, "consumer_id": "c"}).status_code == 200
        )


def _delete_and_kill(
    broker: BrokerProcess, client: httpx.Client, at_window: bool, rng: random.Random
) -> None:
    """Send DELETE, then SIGKILL the broker (see the module docstring for when)."""
    topic_dir = broker.data_dir / "topics" / TOPIC

    def delete() -> None:
        with contextlib.suppress(httpx.HTTPError):
            client.delete(f"/v1/topics/{TOPIC}")

    sender = threading.Thread(target=delete, daemon=True)
    sender.start()
    if at_window:
        deadline = time.monotonic() + 20
        while topic_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.0002)
        assert not topic_dir.exists(), "the deletion never renamed the topic directory"
    else:
        time.sleep(rng.uniform(0, 0.25))
    broker.kill()
    sender.join(30)


def _commits_on_topic(client: httpx.Client) -> dict[str, list[tuple[int, int | None]]]:
    found: dict[str, list[tuple[int, int | None]]] = {}
    for group in ("g", "c"):
        answer = client.get(f"/v1/groups/{group}")
        if answer.status_code == 404:
            continue
        assert answer.status_code == 200, answer.text
        found[group] = [
            (o["partition"], o["committed_offset"])
            for o in answer.json()["offsets"]
            if o["topic"] == TOPIC and o["committed_offset"] is not None
        ]
    return found


def test_kill_9_during_topic_deletion_leaves_no_commit_to_inherit(data_dir: Path) -> None:
    rng = random.Random(17)
    broker = BrokerProcess(data_dir)
    inherited: list[str] = []
    gone = survived = 0
    try:
        broker.start()
        for round_number in range(ROUNDS):
            with httpx.Client(base_url=broker.url, timeout=30) as client:
                _prepare(client)
                _delete_and_kill(broker, client, round_number % 2 == 0, rng)
            broker.start()
            with httpx.Client(base_url=broker.url, timeout=30) as client:
                if client.get(f"/v1/topics/{TOPIC}").status_code == 200:
                    # Killed before the deletion took: every commit is still there.
                    survived += 1
                    commits = _commits_on_topic(client)
                    assert commits["g"] == [(0, COMMITTED)], commits
                    assert commits["c"] == [(0, 3)], commits
                    assert client.delete(f"/v1/topics/{TOPIC}").status_code == 204
                    continue
                gone += 1
                created = client.post("/v1/topics", json={"name": TOPIC, "partitions": PARTITIONS})
                assert created.status_code == 201, created.text
                produced = client.post(
                    f"/v1/topics/{TOPIC}/records",
                    json={"records": [{"value": n, "partition": 0} for n in range(100)]},
                )
                assert produced.status_code == 200, produced.text
                commits = _commits_on_topic(client)
                consumed = client.get("/consume", params={"topic": TOPIC, "consumer_id": "c"})
                if any(commits.values()) or consumed.status_code != 200:
                    inherited.append(
                        f"round {round_number}: commits {commits}, /consume {consumed.status_code}"
                    )
                elif consumed.json()["offset"] != 0:
                    inherited.append(f"round {round_number}: /consume gave {consumed.json()}")
                assert client.delete(f"/v1/topics/{TOPIC}").status_code == 204
        cut_short = broker.log().count("of deleted topics (a deletion cut short)")
        print(
            f"\ncrash during delete: {ROUNDS} rounds, topic gone after the kill in {gone}"
            f" (commits left behind and removed at open in {cut_short}), survived in"
            f" {survived}; commits inherited: {len(inherited)}"
        )
        assert inherited == [], "a re-created topic inherited commits:\n" + "\n".join(inherited)
        assert gone >= ROUNDS // 2, "the kills as the directory left topics/ must delete it"
    finally:
        broker.kill()
