"""Topic pages: live tail and chart, browse, search, message detail, streamed export, consume."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from minimq.errors import InvalidRequest
from minimq.ui.broker import broker
from minimq.ui.browse import DIRECTIONS, BrowsePage, BrowseRequest, browse
from minimq.ui.params import (
    int_param,
    optional_int_param,
    parse_time,
    required_text_param,
    text_param,
)
from minimq.ui.queries import consume_next, format_cursor, parse_cursor, read_record, tail
from minimq.ui.records import (
    chart_points,
    export_csv,
    export_ndjson,
    pretty_record_value,
    record_view,
    shown_headers,
)
from minimq.ui.search import FieldCondition, SearchQuery, scan, stream_matches
from minimq.ui.views.dashboard import current_summary

blueprint = Blueprint("topics", __name__)

MAX_OFFSET = 2**63 - 1
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 25
PAGE_SIZES = (10, 25, 50, 100, 250)
TAIL_BACKLOG = 100
TAIL_LIMIT = 500
MAX_CONSUME = 1000
MAX_NAME = 249
SEARCH_MAX_MATCHES = 500
SEARCH_MAX_SCANNED = 2_000_000
SEARCH_BUDGET_S = 2.0
EXPORT_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _now_ms() -> int:
    return int(time.time() * 1000)


@blueprint.get("/topics")
def pick_topic() -> BaseResponse:
    """Target of the topic picker's form."""
    topic = request.args.get("topic", "").strip()
    if topic:
        return redirect(url_for("topics.topic_page", topic=topic))
    return redirect(url_for("dashboard.index"))


def _partition_param() -> int | None:
    raw = request.args.get("partition", "all").strip()
    if raw in ("", "all"):
        return None
    return int_param("partition", 0, minimum=0, maximum=1_000_000)


def _optional_time(name: str) -> int | None:
    raw = text_param(name, max_length=64)
    return parse_time(raw) if raw else None


def _browse_request() -> BrowseRequest:
    direction = request.args.get("direction", "newest")
    if direction not in DIRECTIONS:
        raise InvalidRequest(f"direction must be one of {', '.join(DIRECTIONS)}")
    cursor_text = request.args.get("cursor", "").strip()
    from_time = _optional_time("time")
    return BrowseRequest(
        partition=_partition_param(),
        # A time to start from only makes sense reading forward from it.
        direction="forward" if from_time is not None else direction,
        size=int_param("size", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE),
        cursor=parse_cursor(cursor_text) if cursor_text else None,
        from_offset=optional_int_param("offset", minimum=0, maximum=MAX_OFFSET),
        from_time=from_time,
    )


def _search_query() -> SearchQuery:
    key_mode = request.args.get("key_mode", "exact")
    if key_mode not in ("exact", "prefix"):
        raise InvalidRequest("key_mode must be exact or prefix")
    field_text = text_param("field", max_length=500)
    return SearchQuery(
        partition=_partition_param(),
        text=text_param("q", max_length=200),
        key=text_param("key", max_length=1000),
        key_mode=key_mode,  # type: ignore[arg-type]
        field=FieldCondition.parse(field_text) if field_text else None,
        from_time=_optional_time("from"),
        until_time=_optional_time("until"),
    )


@blueprint.get("/topics/<topic>")
def topic_page(topic: str) -> str:
    page: BrowsePage = browse(broker(), topic, _browse_request(), now_ms=_now_ms())
    return render_template(
        "topic.html",
        topic=page.info,
        page=page,
        page_sizes=PAGE_SIZES,
        form=request.args,
        next_cursor=format_cursor(page.next_cursor) if page.next_cursor else None,
        groups=broker().list_groups(),
        topics=current_summary().rows,
    )


@blueprint.get("/topics/<topic>/messages/<int:partition>/<int:offset>")
def message_page(topic: str, partition: int, offset: int) -> str:
    record = read_record(broker(), topic, partition, offset)
    if record is None:
        abort(404, description=f"{topic}/{partition} has no message at offset {offset}.")
    return render_template(
        "message.html",
        record=record,
        pretty=pretty_record_value(record),
        headers=shown_headers(record),
    )


@blueprint.get("/topics/<topic>/export.<kind>")
def export(topic: str, kind: str) -> Response:
    """Every record of the range that matches the search parameters, streamed as it is found."""
    if kind not in EXPORT_TYPES:
        abort(404, description="Exports are available as .ndjson and .csv.")
    query = _search_query()
    client = broker()
    records = stream_matches(client, topic, query)
    # The first chunk is read here, so a broker error is still a proper error page.
    first = next(records, None)

    def chained() -> Iterator[str]:
        writer = export_ndjson if kind == "ndjson" else export_csv
        yield from writer(itertools.chain([] if first is None else [first], records))

    return Response(
        stream_with_context(chained()),
        mimetype=EXPORT_TYPES[kind],
        headers={"Content-Disposition": f'attachment; filename="{topic}.{kind}"'},
    )


@blueprint.get("/api/topics/<topic>/search")
def search_api(topic: str) -> Response:
    """One bounded step of a search; call again with ``cursor`` until ``done``."""
    cursor_text = request.args.get("cursor", "").strip()
    result = scan(
        broker(),
        topic,
        _search_query(),
        parse_cursor(cursor_text) if cursor_text else None,
        max_matches=int_param("limit", 100, minimum=1, maximum=SEARCH_MAX_MATCHES),
        max_scanned=SEARCH_MAX_SCANNED,
        budget_s=SEARCH_BUDGET_S,
    )
    return jsonify(
        records=[record_view(r) for r in result.records],
        cursor=format_cursor(result.cursor),
        scanned=result.scanned,
        total=result.total,
        done=result.done,
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
    """Records after ``cursor`` (all partitions), their chart points, the next cursor and totals.

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
        messages=batch.messages,
    )
