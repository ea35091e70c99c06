"""Topic pages: live tail and chart, browse table, message detail, export, consume."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from minimq.ui.broker import broker
from minimq.ui.params import (
    int_param,
    optional_int_param,
    parse_time,
    required_text_param,
    text_param,
)
from minimq.ui.queries import (
    BrowsePage,
    browse,
    consume_next,
    format_cursor,
    offset_at_time,
    parse_cursor,
    read_record,
    tail,
)
from minimq.ui.records import (
    chart_points,
    export_csv,
    export_json,
    pretty_value,
    record_view,
)

blueprint = Blueprint("topics", __name__)

MAX_OFFSET = 2**63 - 1
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 25
FILTER_SCAN_LIMIT = 5000
TAIL_BACKLOG = 100
TAIL_LIMIT = 500
MAX_CONSUME = 1000
MAX_NAME = 249
EXPORT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


@blueprint.get("/topics")
def pick_topic() -> BaseResponse:
    """Target of the topic dropdown's form (for browsers without scripts)."""
    topic = request.args.get("topic", "").strip()
    if topic:
        return redirect(url_for("topics.topic_page", topic=topic))
    return redirect(url_for("dashboard.index"))


def _browse_from_request(topic: str) -> BrowsePage:
    """The browse page the query string asks for: partition, offset or time, size, filter."""
    partition = int_param("partition", 0, minimum=0, maximum=1_000_000)
    top = optional_int_param("offset", minimum=0, maximum=MAX_OFFSET)
    jump_time = text_param("time", max_length=64)
    if jump_time:
        top = offset_at_time(broker(), topic, partition, parse_time(jump_time))
    return browse(
        broker(),
        topic,
        partition,
        top=top,
        size=int_param("size", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE),
        text_filter=text_param("q", max_length=200),
        scan_limit=FILTER_SCAN_LIMIT,
    )


@blueprint.get("/topics/<topic>")
def topic_page(topic: str) -> str:
    page = _browse_from_request(topic)
    return render_template(
        "topic.html",
        topic=page.info,
        topics=broker().list_topics(),
        groups=broker().list_groups(),
        page=page,
    )


@blueprint.get("/topics/<topic>/messages/<int:partition>/<int:offset>")
def message_page(topic: str, partition: int, offset: int) -> str:
    record = read_record(broker(), topic, partition, offset)
    if record is None:
        abort(404, description=f"{topic}/{partition} has no message at offset {offset}.")
    return render_template("message.html", record=record, pretty=pretty_value(record.value))


@blueprint.get("/topics/<topic>/export.<kind>")
def export(topic: str, kind: str) -> Response:
    """The messages the browse table shows (same query string), as JSON or CSV."""
    if kind not in EXPORT_TYPES:
        abort(404, description="Exports are available as .json and .csv.")
    page = _browse_from_request(topic)
    body = export_json(page.records) if kind == "json" else export_csv(page.records)
    filename = f"{topic}-p{page.partition}-{page.top}.{kind}"
    return Response(
        body,
        mimetype=EXPORT_TYPES[kind],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@blueprint.post("/topics/<topic>/consume")
def consume(topic: str) -> str:
    """Consume the next N records as a group, committing past them, and show them."""
    group = required_text_param("group", max_length=MAX_NAME)
    count = int_param("count", 10, minimum=1, maximum=MAX_CONSUME)
    result = consume_next(broker(), group, topic, count)
    return render_template(
        "consume.html",
        topic=topic,
        result=result,
        count=count,
        offsets=[o for o in result.group_info.offsets if o.topic == topic],
    )


@blueprint.get("/api/topics/<topic>/tail")
def tail_api(topic: str) -> Response:
    """Records after ``cursor`` (all partitions), their chart points, and the next cursor.

    Without a cursor the answer holds the last records of each partition, so
    a freshly opened page starts with a filled table and chart.
    """
    batch = tail(
        broker(),
        topic,
        parse_cursor(request.args.get("cursor", "")),
        backlog=TAIL_BACKLOG,
        limit=TAIL_LIMIT,
    )
    return jsonify(
        records=[record_view(r) for r in batch.records],
        points=chart_points(batch.records),
        cursor=format_cursor(batch.cursor),
    )
