"""Every page and JSON endpoint of the UI against a real broker process (Flask test client)."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid

import pytest
from flask.testing import FlaskClient

from minimq.client import Client
from tests.ui.conftest import CSRF

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def new_topic(client: Client, count: int, *, partitions: int = 1) -> str:
    """A fresh topic holding ``count`` sensor readings (offsets 0..count-1 per partition)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.create_topic(name, partitions=partitions)
    for i in range(count):
        for p in range(partitions):
            client.produce(
                name,
                {"sensor_id": f"s{i % 2}", "value": float(i), "unit": "C"},
                key=f"k{i % 2}",
                partition=p,
            )
    return name


def html(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined]


def test_dashboard_lists_topics_in_the_picker(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 1)
    page = web.get("/")
    assert page.status_code == 200
    assert f'<option value="{topic}">{topic}</option>' in html(page)


def test_overview_has_counts_rate_latest_and_points(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = new_topic(broker_client, 5)
    cards = {card["name"]: card for card in web.get("/api/overview").get_json()["topics"]}
    card = cards[topic]
    assert card["messages"] == 5
    assert card["rate_per_minute"] == 5
    assert card["latest"]["offset"] == 4
    assert card["latest"]["summary"] == "4 C"
    assert [p["y"] for p in card["points"]] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert {p["series"] for p in card["points"]} == {"s0 · value", "s1 · value"}
    assert card["url"] == f"/topics/{topic}"


def test_overview_rate_counts_only_the_last_minute(web: FlaskClient, broker_client: Client) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    old = int(time.time() * 1000) - 120_000
    for i in range(70):  # more than the dashboard's recent window, all old
        broker_client.produce(topic, i, timestamp=old + i)
    broker_client.produce(topic, 70)
    card = next(c for c in web.get("/api/overview").get_json()["topics"] if c["name"] == topic)
    assert card["messages"] == 71
    assert card["rate_per_minute"] == 1


def test_topic_picker_form_redirects(web: FlaskClient) -> None:
    assert web.get("/topics?topic=abc").headers["Location"] == "/topics/abc"
    assert web.get("/topics").headers["Location"] == "/"


def test_tail_returns_backlog_then_only_new_records(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = new_topic(broker_client, 3, partitions=2)
    first = web.get(f"/api/topics/{topic}/tail").get_json()
    assert len(first["records"]) == 6
    assert first["cursor"] == "0:3,1:3"
    assert len(first["points"]) == 6
    again = web.get(f"/api/topics/{topic}/tail?cursor={first['cursor']}").get_json()
    assert again["records"] == []
    broker_client.produce(topic, {"value": 9}, partition=1)
    new = web.get(f"/api/topics/{topic}/tail?cursor={first['cursor']}").get_json()
    assert [(r["partition"], r["offset"]) for r in new["records"]] == [(1, 3)]
    assert new["cursor"] == "0:3,1:4"


def test_tail_clamps_a_cursor_beyond_the_log(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 2)
    answer = web.get(f"/api/topics/{topic}/tail?cursor=0:999").get_json()
    assert answer["records"] == []
    assert answer["cursor"] == "0:2"


def test_tail_of_unknown_topic_is_404(web: FlaskClient) -> None:
    response = web.get("/api/topics/no-such-topic-x/tail")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "TOPIC_NOT_FOUND"


def test_unknown_topic_page_is_a_friendly_404(web: FlaskClient) -> None:
    response = web.get("/topics/no-such-topic-x")
    assert response.status_code == 404
    assert "no-such-topic-x" in html(response)
    assert "TOPIC_NOT_FOUND" in html(response)


def test_browse_newest_first_with_pagination(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 30)
    page = html(web.get(f"/topics/{topic}?size=10"))
    assert "showing 10 messages at or below offset 29" in page
    assert f"/topics/{topic}?offset=19&amp;partition=0&amp;size=10" in page  # Older
    older = html(web.get(f"/topics/{topic}?size=10&offset=19"))
    assert "showing 10 messages at or below offset 19" in older
    assert f"/topics/{topic}?offset=9&amp;" in older
    assert f"/topics/{topic}?offset=29&amp;" in older  # Newer
    oldest = html(web.get(f"/topics/{topic}?size=10&offset=5"))
    assert "showing 6 messages at or below offset 5" in oldest
    assert 'data-testid="older"' not in oldest


def test_browse_rows_are_in_descending_offset_order(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = new_topic(broker_client, 4)
    exported = json.loads(web.get(f"/topics/{topic}/export.json").get_data(as_text=True))
    assert [row["offset"] for row in exported] == [3, 2, 1, 0]


def test_browse_partition_selector_and_bad_partition(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = new_topic(broker_client, 2, partitions=3)
    rows = json.loads(web.get(f"/topics/{topic}/export.json?partition=2").get_data(as_text=True))
    assert {row["partition"] for row in rows} == {2}
    response = web.get(f"/topics/{topic}?partition=7")
    assert response.status_code == 400
    assert "has no partition 7" in html(response)


def test_browse_text_filter_scans_backwards(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 40)
    rows = json.loads(web.get(f"/topics/{topic}/export.json?q=S1&size=5").get_data(as_text=True))
    assert [row["offset"] for row in rows] == [39, 37, 35, 33, 31]
    page = html(web.get(f"/topics/{topic}?q=S1&size=5"))
    assert "matching “S1”" in page
    assert f"/topics/{topic}?offset=30&amp;" in page  # Older continues below the last shown


def test_jump_to_offset_and_time(web: FlaskClient, broker_client: Client) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    base = 1_700_000_000_000
    for i in range(10):
        broker_client.produce(topic, i, timestamp=base + i * 1000)
    by_offset = json.loads(
        web.get(f"/topics/{topic}/export.json?offset=4&size=2").get_data(as_text=True)
    )
    assert [row["offset"] for row in by_offset] == [4, 3]
    by_time = json.loads(
        web.get(f"/topics/{topic}/export.json?time=2023-11-14T22:13:26.500Z&size=2").get_data(
            as_text=True
        )
    )
    assert [row["offset"] for row in by_time] == [7, 6]
    assert web.get(f"/topics/{topic}?time=not-a-time").status_code == 400


def test_export_csv(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 3)
    response = web.get(f"/topics/{topic}/export.csv")
    assert response.mimetype == "text/csv"
    assert f'filename="{topic}-p0-2.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["topic", "partition", "offset"]
    assert [row[2] for row in rows[1:]] == ["2", "1", "0"]
    assert json.loads(rows[1][7]) == {"sensor_id": "s0", "value": 2.0, "unit": "C"}


def test_message_detail_shows_key_headers_and_pretty_json(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    meta = broker_client.produce(topic, {"b": 1, "a": [1, 2]}, key="k1", headers={"source": "sim"})
    page = html(web.get(f"/topics/{topic}/messages/{meta.partition}/{meta.offset}"))
    assert "<code>k1</code>" in page
    assert "<th>source</th><td>sim</td>" in page
    assert "{\n  &#34;a&#34;: [\n    1,\n    2\n  ],\n  &#34;b&#34;: 1\n}" in page
    missing = web.get(f"/topics/{topic}/messages/0/99")
    assert missing.status_code in (404, 416)


def test_untrusted_content_is_escaped_everywhere(web: FlaskClient, broker_client: Client) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    meta = broker_client.produce(topic, XSS, key=XSS, headers={XSS: XSS})
    for path in (
        f"/topics/{topic}",
        f"/topics/{topic}/messages/0/{meta.offset}",
        f"/produce?topic={topic}&partition=0&offset={meta.offset}",
    ):
        page = html(web.get(path))
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
    tail = web.get(f"/api/topics/{topic}/tail")
    assert tail.mimetype == "application/json"
    assert tail.get_json()["records"][0]["value_text"] == XSS


def test_consume_next_advances_the_committed_offset(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = new_topic(broker_client, 7)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = web.post(
        f"/topics/{topic}/consume", data={"csrf_token": CSRF, "group": group, "count": "3"}
    )
    assert first.status_code == 200
    assert "3 messages consumed and committed" in html(first)
    offsets = broker_client.describe_group(group).offsets
    assert [(o.committed_offset, o.lag) for o in offsets] == [(3, 4)]
    assert '<td class="committed-offset">3</td>' in html(first)
    second = web.post(
        f"/topics/{topic}/consume", data={"csrf_token": CSRF, "group": group, "count": "10"}
    )
    assert "4 messages consumed" in html(second)
    assert [o.committed_offset for o in broker_client.describe_group(group).offsets] == [7]
    third = web.post(
        f"/topics/{topic}/consume", data={"csrf_token": CSRF, "group": group, "count": "1"}
    )
    assert "0 messages consumed" in html(third)
    assert broker_client.describe_group(group).members == []  # the UI member left


def test_groups_page_shows_offsets_lag_and_members(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 5)
    group = f"g-{uuid.uuid4().hex[:8]}"
    broker_client.group_fetch(group, topic, member_id="worker-1", limit=2, commit=True)
    page = html(web.get("/groups"))
    assert f'data-group="{group}"' in page
    assert "worker-1" in page
    single = html(web.get(f"/groups/{group}"))
    assert f"Group {group}" in single
    assert '<td class="lag">3</td>' in single
    assert '<strong data-testid="total-lag">3</strong>' in single
    assert web.get("/groups/no-such-group-x").status_code == 404


def test_reset_needs_confirmation(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 5)
    group = f"g-{uuid.uuid4().hex[:8]}"
    broker_client.commit(group, [(topic, 0, 4)])
    form = {"csrf_token": CSRF, "topic": topic, "to": "offset", "offset": "1"}
    confirm = web.post(f"/groups/{group}/reset", data=form)
    assert confirm.status_code == 200
    assert "will move to\n  offset 1" in html(confirm)
    assert broker_client.describe_group(group).offsets[0].committed_offset == 4
    done = web.post(f"/groups/{group}/reset", data={**form, "confirmed": "yes"})
    assert done.status_code == 302
    assert broker_client.describe_group(group).offsets[0].committed_offset == 1
    followed = web.get(done.headers["Location"])
    assert f"Group {group} reset to offset on {topic}." in html(followed)
    earliest = {"csrf_token": CSRF, "topic": topic, "to": "earliest", "confirmed": "yes"}
    web.post(f"/groups/{group}/reset", data=earliest)
    assert broker_client.describe_group(group).offsets[0].committed_offset == 0


def test_delete_group_needs_confirmation(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    broker_client.commit(group, [(topic, 0, 1)])
    confirm = web.post(f"/groups/{group}/delete", data={"csrf_token": CSRF})
    assert "Delete group" in html(confirm)
    assert broker_client.describe_group(group).group == group
    done = web.post(f"/groups/{group}/delete", data={"csrf_token": CSRF, "confirmed": "yes"})
    assert done.status_code == 302
    assert group not in {g.group for g in broker_client.list_groups()}


@pytest.mark.parametrize(
    ("fmt", "typed", "stored"),
    [
        ("json", '{"value": 1.5, "ok": true}', {"value": 1.5, "ok": True}),
        ("text", "{not json", "{not json"),
    ],
)
def test_produce_form_sends_json_or_text(
    web: FlaskClient, broker_client: Client, fmt: str, typed: str, stored: object
) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    response = web.post(
        "/produce",
        data={
            "csrf_token": CSRF,
            "topic": topic,
            "key": "k",
            "value": typed,
            "format": fmt,
            "headers": '{"source": "ui"}',
        },
    )
    assert response.status_code == 200
    assert f"Sent to {topic} partition 0 at offset 0." in html(response)
    record = broker_client.fetch(topic, 0).records[0]
    assert (record.key, record.value, record.headers) == ("k", stored, {"source": "ui"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"topic": "t", "value": "{oops", "format": "json"}, "not valid JSON"),
        ({"topic": "", "value": "1"}, "topic is required"),
        ({"topic": "t", "value": "1", "format": "xml"}, "format must be"),
        ({"topic": "t", "value": "1", "headers": "[1]"}, "headers must be a JSON object"),
        ({"topic": "t", "value": "1", "partition": "x"}, "partition must be an integer"),
        ({"topic": "bad/name", "value": "1"}, "topic names are"),
    ],
)
def test_produce_form_reports_bad_input(
    web: FlaskClient, data: dict[str, str], message: str
) -> None:
    response = web.post("/produce", data={"csrf_token": CSRF, **data})
    assert response.status_code == 400
    assert message in html(response)


def test_resend_prefills_the_form(web: FlaskClient, broker_client: Client) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    broker_client.produce(topic, {"value": 3}, key="k9", headers={"h": "v"})
    page = html(web.get(f"/produce?topic={topic}&partition=0&offset=0"))
    assert 'value="k9"' in page
    assert "&#34;value&#34;: 3" in page
    assert f'value="{topic}"' in page
    assert web.get(f"/produce?topic={topic}&partition=0&offset=5").status_code in (400, 416)


def test_health(web: FlaskClient) -> None:
    assert web.get("/api/health").get_json() == {"broker": "up"}
