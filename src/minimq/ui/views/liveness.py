"""``/healthz``: the UI process answers, whatever the broker does (a container's health check).

It never calls the broker and needs no login: an orchestrator restarting the
UI because the broker is down would only add a second outage.  Whether the
broker answers is ``/api/health`` (:mod:`minimq.ui.views.dashboard`).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

blueprint = Blueprint("liveness", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")
