"""Error pages: a friendly page (or a JSON error under ``/api/``), never a traceback.

Broker errors keep their stable code; an outage is a 503 whose page shows
the broker banner and reloads itself once the broker answers again.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from minimq.errors import BrokerUnavailable, MiniMQError
from minimq.ui.broker import status_for

log = logging.getLogger(__name__)

HTTP_CODES = {400: "INVALID_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _respond(
    status: int, code: str, message: str, *, broker_down: bool = False
) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify(error={"code": code, "message": message}), status
    page = render_template(
        "error.html", status=status, code=code, message=message, broker_down=broker_down
    )
    return page, status


def handle_broker_error(error: MiniMQError) -> tuple[Response | str, int]:
    status = status_for(error)
    # An outage is expected and already shown to the user; other failures are news.
    level = logging.INFO if isinstance(error, BrokerUnavailable) else logging.WARNING
    if status >= 500:
        log.log(level, "broker call failed for %s: %s: %s", request.path, error.code, error.message)
    down = isinstance(error, BrokerUnavailable)
    # The transport's own words (urllib3's connection pool text) help in a log, not on a page.
    message = current_app.config["MINIMQ_BROKER_UNREACHABLE"] if down else error.message
    return _respond(status, error.code, message, broker_down=down)


def handle_http_error(error: HTTPException) -> tuple[Response | str, int]:
    status = error.code or 500
    code = HTTP_CODES.get(status, error.name.upper().replace(" ", "_"))
    return _respond(status, code, error.description or error.name)


def handle_unexpected(error: Exception) -> tuple[Response | str, int]:
    # The traceback goes to the log, never to the user.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _respond(500, "INTERNAL_ERROR", InternalServerError.description or "internal error")


def register(app: Flask) -> None:
    app.register_error_handler(MiniMQError, handle_broker_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
