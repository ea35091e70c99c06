"""The dashboard (``/``): the topic table, its live data (``/api/summary``) and the health probe."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from minimq.ui.broker import broker
from minimq.ui.summary import Summary, SummaryCache

blueprint = Blueprint("dashboard", __name__)

EXTENSION_KEY = "minimq_summary"


def attach_summary(app_extensions: dict[str, object], max_age_s: float) -> None:
    app_extensions[EXTENSION_KEY] = SummaryCache(max_age_s=max_age_s)


def current_summary() -> Summary:
    cache: SummaryCache = current_app.extensions[EXTENSION_KEY]
    return cache.get(broker())


@blueprint.get("/")
def index() -> str:
    # The first paint holds the data: the table is usable before any script runs.
    return render_template("dashboard.html", rows=current_summary().rows)


@blueprint.get("/api/summary")
def summary() -> Response:
    """Every topic's row; ``304`` without a body when the browser's ETag is current."""
    current = current_summary()
    if request.if_none_match.contains(current.etag.strip('"')):
        response = Response(status=304)
    else:
        response = Response(current.body, mimetype="application/json")
    response.headers["ETag"] = current.etag
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/api/health")
def health() -> Response:
    """200 when a broker answers, naming it (``url``: the one in use among several);
    otherwise the broker error (503 when none answers)."""
    client = broker()
    client.health()
    return jsonify(broker="up", url=client.base_url)
