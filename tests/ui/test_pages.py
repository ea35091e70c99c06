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


def test_dashboard_lists_topics_in_the_table_and_picker(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = new_topic(broker_client, 1)
    page = html(web.get("/"))
    assert f'<option value="{topic}">' in page
    assert f'<tr data-topic="{topic}">' in page


def summary_row(web: FlaskClient, topic: str) -> dict[str, object]:
    rows = web.get("/api/summary").get_json()["topics"]
    row: dict[str, object] = next(r for r in rows if r["name"] == topic)
    return row


def test_summary_has_counts_rate_last_time_and_group_lag(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = new_topic(broker_client, 5, partitions=2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    broker_client.commit(group, [(topic, 0, 4)])
    last = broker_client.fetch(topic, 1, offset=4).records[0].timestamp
    row = summary_row(web, topic)
    assert row["messages"] == 10
    assert row["partitions"] == 2
    assert row["rate_per_minute"] == 10
    assert row["last_timestamp"] >= last  # type: ignore[operator]
    # Lag counts every partition, the uncommitted one from its start.
    assert row["groups"] == [{"group": group, "lag": 6}]
    assert row["lag"] == 6


def test_summary_rate_counts_only_the_last_minute(web: FlaskClient, broker_client: Client) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    old = int(time.time() * 1000) - 120_000
    broker_client.produce_batch(topic, [{"value": i, "timestamp": old + i} for i in range(70)])
    broker_client.produce(topic, 70)
    row = summary_row(web, topic)
    assert row["messages"] == 71
    assert row["rate_per_minute"] == 1


def test_summary_answers_304_while_nothing_changed(web: FlaskClient, broker_client: Client) -> None:
    first = web.get("/api/summary")
    etag = first.headers["ETag"]
    assert web.get("/api/summary", headers={"If-None-Match": etag}).status_code in (200, 304)
    # A second answer within the cache age is the same summary: a bodiless 304.
    again = web.get(
        "/api/summary", headers={"If-None-Match": web.get("/api/summary").headers["ETag"]}
    )
    assert again.status_code == 304 and again.data == b""
    new_topic(broker_client, 1)
    # The summary is recomputed at most once a poll interval: poll until it has been.
    deadline = time.monotonic() + 30
    changed = web.get("/api/summary", headers={"If-None-Match": etag})
    while changed.status_code == 304 and time.monotonic() < deadline:
        time.sleep(0.05)
        changed = web.get("/api/summary", headers={"If-None-Match": etag})
    assert changed.status_code == 200, "the summary never showed the new topic"


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


def offsets_of(page: str) -> list[tuple[int, int]]:
    """(partition, offset) of every row of the browse table, in display order."""
    table = page.split('data-testid="browse-table"')[1].split("</table>", maxsplit=1)[0]
    found = []
    for chunk in table.split('<tr data-partition="')[1:]:
        partition, rest = chunk.split('"', 1)
        found.append((int(partition), int(rest.split('data-offset="')[1].split('"')[0])))
    return found


def next_link(page: str) -> str:
    return (
        page.split('data-testid="next-page"', maxsplit=1)[0]
        .rsplit('href="', 1)[1]
        .split('"', maxsplit=1)[0]
        .replace("&amp;", "&")
    )


def test_browse_newest_first_pages_without_gaps(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 30)
    first = html(web.get(f"/topics/{topic}?size=10"))
    assert offsets_of(first) == [(0, o) for o in range(29, 19, -1)]
    second = html(web.get(next_link(first)))
    assert offsets_of(second) == [(0, o) for o in range(19, 9, -1)]
    oldest = html(web.get(f"/topics/{topic}?size=10&offset=5"))
    assert offsets_of(oldest) == [(0, o) for o in range(5, -1, -1)]
    assert 'data-testid="next-page"' not in oldest


def test_browse_all_partitions_merged_by_time(web: FlaskClient, broker_client: Client) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    broker_client.create_topic(topic, partitions=3)
    base = int(time.time() * 1000) - 60_000
    broker_client.produce_batch(
        topic, [{"value": i, "partition": i % 3, "timestamp": base + i} for i in range(12)]
    )
    newest = html(web.get(f"/topics/{topic}?partition=all&size=5"))
    assert offsets_of(newest) == [(2, 3), (1, 3), (0, 3), (2, 2), (1, 2)]
    forward = html(web.get(f"/topics/{topic}?partition=all&direction=forward&size=5"))
    assert offsets_of(forward) == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]
    rest = html(web.get(next_link(forward)))
    assert offsets_of(rest) == [(2, 1), (0, 2), (1, 2), (2, 2), (0, 3)]


def test_browse_forward_from_a_time_keeps_the_inputs(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    broker_client.create_topic(topic, partitions=2)
    base = 1_700_000_000_000
    broker_client.produce_batch(
        topic, [{"value": i, "partition": i % 2, "timestamp": base + i * 1000} for i in range(10)]
    )
    when = "2023-11-14T22:13:26.500Z"  # base + 6.5 s
    page = html(web.get(f"/topics/{topic}?time={when}&size=2"))
    assert offsets_of(page) == [(1, 3), (0, 4)]  # records 7 and 8, oldest first
    assert f'value="{when}"' in page
    assert "oldest first from 2023-11-14T22:13:26.500Z" in page


def test_browse_from_a_future_time_says_so(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 3)
    future = int(time.time() * 1000) + 86_400_000
    page = html(web.get(f"/topics/{topic}?time={future}"))
    assert "That time is in the future" in page
    assert offsets_of(page) == []


def test_browse_bad_partition_and_time(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 2, partitions=3)
    response = web.get(f"/topics/{topic}?partition=7")
    assert response.status_code == 400
    assert "has no partition 7" in html(response)
    assert web.get(f"/topics/{topic}?time=not-a-time").status_code == 400


def search(web: FlaskClient, topic: str, query: str) -> dict[str, object]:
    answer: dict[str, object] = web.get(f"/api/topics/{topic}/search?{query}").get_json()
    return answer


def test_search_by_key_exact_prefix_and_json_field(web: FlaskClient, broker_client: Client) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    broker_client.create_topic(topic, partitions=2)
    broker_client.produce_batch(
        topic,
        [
            {"key": f"dev-{i}", "value": {"sensor_id": f"t-{i % 3}", "n": i}, "partition": i % 2}
            for i in range(12)
        ],
    )
    exact = search(web, topic, "key=dev-1")
    assert [(r["key"], r["partition"]) for r in exact["records"]] == [("dev-1", 1)]  # type: ignore[attr-defined,index]
    assert (exact["scanned"], exact["total"], exact["done"]) == (12, 12, True)
    prefix = search(web, topic, "key=dev-1&key_mode=prefix")
    assert sorted(r["key"] for r in prefix["records"]) == ["dev-1", "dev-10", "dev-11"]  # type: ignore[attr-defined,index]
    field = search(web, topic, 'field=value.sensor_id = "t-1"')
    assert sorted(r["key"] for r in field["records"]) == ["dev-1", "dev-10", "dev-4", "dev-7"]  # type: ignore[attr-defined,index]
    number = search(web, topic, "field=value.n = 5")
    assert [r["key"] for r in number["records"]] == ["dev-5"]  # type: ignore[attr-defined,index]
    bad = web.get(f"/api/topics/{topic}/search?field=sensor_id")
    assert bad.status_code == 400 and "value.<field>" in bad.get_json()["error"]["message"]


def test_search_stops_at_the_limit_and_continues(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 40)
    first = search(web, topic, "q=S1&limit=5")
    assert [r["offset"] for r in first["records"]] == [1, 3, 5, 7, 9]  # type: ignore[attr-defined,index]
    assert (first["scanned"], first["total"], first["done"]) == (10, 40, False)
    rest = search(web, topic, f"q=S1&limit=100&cursor={first['cursor']}")
    assert [r["offset"] for r in rest["records"]] == list(range(11, 40, 2))  # type: ignore[attr-defined,index]
    assert rest["done"] is True


def test_export_streams_every_match_as_ndjson(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 30, partitions=2)
    response = web.get(f"/topics/{topic}/export.ndjson?key=k1")
    assert response.mimetype == "application/x-ndjson"
    assert response.is_streamed
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert len(rows) == 30 and {r["key"] for r in rows} == {"k1"}
    assert rows[0]["value"] == {"sensor_id": "s1", "value": 1.0, "unit": "C"}
    whole = web.get(f"/topics/{topic}/export.ndjson?partition=1").get_data(as_text=True)
    assert len(whole.splitlines()) == 30


def test_export_csv(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 3)
    response = web.get(f"/topics/{topic}/export.csv")
    assert response.mimetype == "text/csv"
    assert f'filename="{topic}.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["topic", "partition", "offset"]
    assert [row[2] for row in rows[1:]] == ["0", "1", "2"]
    assert json.loads(rows[1][7]) == {"sensor_id": "s0", "value": 0.0, "unit": "C"}


def test_create_and_delete_a_topic(web: FlaskClient, broker_client: Client) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    form = {"csrf_token": CSRF, "name": name, "partitions": "3", "retention_hours": "24"}
    created = web.post("/new-topic", data=form)
    assert created.status_code == 302 and created.headers["Location"] == f"/topics/{name}"
    info = broker_client.describe_topic(name)
    assert (info.partitions, info.config["retention_ms"]) == (3, 86_400_000)
    assert "retention: 24.0 h" in html(web.get(f"/topics/{name}"))
    again = web.post("/new-topic", data=form)
    assert again.status_code == 409 and f'value="{name}"' in html(again)
    bad = web.post("/new-topic", data={**form, "name": "x", "partitions": "0"})
    assert bad.status_code == 400 and 'id="partitions-error"' in html(bad)
    confirm = web.post(f"/topics/{name}/delete", data={"csrf_token": CSRF})
    assert "Type the topic" in html(confirm)
    wrong = web.post(
        f"/topics/{name}/delete", data={"csrf_token": CSRF, "confirmed": "yes", "confirm_name": "x"}
    )
    assert wrong.status_code == 400
    assert name in {t.name for t in broker_client.list_topics()}
    done = web.post(
        f"/topics/{name}/delete",
        data={"csrf_token": CSRF, "confirmed": "yes", "confirm_name": name},
    )
    assert done.status_code == 302
    assert name not in {t.name for t in broker_client.list_topics()}


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
    assert '<td data-testid="group-protocol">http</td>' in page
    single = html(web.get(f"/groups/{group}"))
    assert f"Group {group}" in single
    assert "worker-1" in single
    assert '<td class="num lag">3</td>' in single
    assert '<strong id="total-lag" data-testid="total-lag">3</strong>' in single
    live = web.get(f"/api/groups/{group}").get_json()
    assert live["total_lag"] == 3 and live["offsets"][0]["committed_offset"] == 2
    assert web.get("/groups/no-such-group-x").status_code == 404


def test_reset_needs_confirmation(web: FlaskClient, broker_client: Client) -> None:
    topic = new_topic(broker_client, 5)
    group = f"g-{uuid.uuid4().hex[:8]}"
    broker_client.commit(group, [(topic, 0, 4)])
    form = {"csrf_token": CSRF, "topic": topic, "to": "offset", "offset": "1"}
    confirm = web.post(f"/groups/{group}/reset", data=form)
    assert confirm.status_code == 200
    preview = html(confirm)
    assert "will move to\n  offset 1" in preview
    assert '<td class="num new-offset">1</td>' in preview and "re-reads 3" in preview
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
    assert web.get("/api/health").get_json()["broker"] == "up"


def test_reset_form_errors_are_inline_and_keep_the_input(
    web: FlaskClient, broker_client: Client
) -> None:
    topic = new_topic(broker_client, 5)
    group = f"g-{uuid.uuid4().hex[:8]}"
    broker_client.commit(group, [(topic, 0, 4)])
    form = {"csrf_token": CSRF, "topic": topic, "to": "offset", "offset": "abc", "time": "later"}
    page = web.post(f"/groups/{group}/reset", data=form)
    assert page.status_code == 400
    text = html(page)
    assert 'id="offset-error"' in text and 'value="abc"' in text and 'value="later"' in text
    beyond = web.post(f"/groups/{group}/reset", data={**form, "offset": "99", "time": ""})
    assert beyond.status_code == 416 and "outside" in html(beyond)
    assert broker_client.describe_group(group).offsets[0].committed_offset == 4
