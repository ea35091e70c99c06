"""The dashboard (``/``), its live data (``/api/overview``) and the health probe."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, url_for

from minimq.ui.broker import broker
from minimq.ui.queries import topic_overview
from minimq.ui.records import chart_points, record_view

blueprint = Blueprint("dashboard", __name__)

RECENT_RECORDS = 60


@blueprint.get("/")
def index() -> str:
    return render_template("dashboard.html", topics=broker().list_topics())


@blueprint.get("/api/overview")
def overview() -> Response:
    """Every topic's card data: totals, rate over the last minute, latest record, points."""
    now_ms = int(time.time() * 1000)
    cards: list[dict[str, Any]] = []
    for info in broker().list_topics():
        view = topic_overview(broker(), info, now_ms=now_ms, recent=RECENT_RECORDS)
        cards.append(
            {
                "name": info.name,
                "url": url_for("topics.topic_page", topic=info.name),
                "partitions": info.partitions,
                "messages": info.messages,
                "bytes": info.bytes,
                "rate_per_minute": view.rate_per_minute,
                "latest": record_view(view.latest) if view.latest else None,
                "points": chart_points(view.recent),
            }
        )
    return jsonify(topics=cards, now=now_ms)


@blueprint.get("/api/health")
def health() -> Response:
    """200 when the broker answers; otherwise the broker error (503 when it is down)."""
    broker().health()
    return jsonify(broker="up")
