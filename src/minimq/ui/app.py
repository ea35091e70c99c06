"""The Flask application factory of the MiniMQ web UI.

The UI is a broker client with pages: every view reads or writes through
:mod:`minimq.client` (see :mod:`minimq.ui.broker`).  Live pages poll the UI's
own small JSON endpoints under ``/api/`` once a second; the only state the UI
keeps between requests is the dashboard's topic summary, computed at most once
a second for every open tab (:mod:`minimq.ui.summary`), so any number of
waitress threads can serve it.

All assets (Bootstrap through Bootstrap-Flask's local serving, Chart.js
vendored under ``static/vendor``) are served by the UI itself, so it works
without internet access.  The Content-Security-Policy allows scripts from the
UI's own origin only: no inline script, so an escaping mistake in a template
still could not run message contents.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response
from flask_bootstrap import Bootstrap5

from minimq.ui import csrf, login
from minimq.ui.broker import attach_client, unreachable_message
from minimq.ui.records import (
    format_bytes,
    format_count,
    format_time,
    shown_key,
    shown_value,
)
from minimq.ui.views import (
    dashboard,
    errors,
    groups,
    liveness,
    nodes,
    produce,
    topic_admin,
    topic_retention,
    topics,
)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # Chart.js sizes its canvas through inline style attributes.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def _add_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def create_app(
    broker_url: str | Sequence[str],
    token: str | None = None,
    *,
    password: str | None = None,
    secret_key: str | None = None,
    secure_cookie: bool = False,
    poll_interval_ms: int = 1000,
    broker_timeout: float = 5.0,
    **config: Any,
) -> Flask:
    """Build the UI for the broker at ``broker_url`` (or any of several: a sequence,
    or comma-separated URLs, of gateways over one cluster; ``ValueError`` if malformed).

    ``token`` is sent to the broker as a bearer token. With ``password``, or
    else with a ``token``, the UI needs a login with it (:mod:`minimq.ui.login`).
    ``secret_key`` signs the session cookie (the login and the CSRF token); by
    default a random key per process (sessions then end when the UI restarts).
    ``secure_cookie`` marks that cookie ``Secure`` even over plain http (behind
    a proxy that ends TLS); it is ``Secure`` over https anyway.
    ``poll_interval_ms`` is how often live pages poll (at most 1000 ms keeps
    the live tail within a second).  Extra ``config`` goes to ``app.config``.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key or secrets.token_hex(32), BOOTSTRAP_SERVE_LOCAL=True)
    client = attach_client(app, broker_url, token, broker_timeout)
    app.config.update(
        MINIMQ_BROKER_URL=", ".join(client.base_urls),
        MINIMQ_BROKER_UNREACHABLE=unreachable_message(client.base_urls),
    )
    app.config.update(config)
    Bootstrap5(app)
    # The login first: a request without one is sent to the login form, whatever it is.
    login.install(app, password or token, secure_cookie=secure_cookie)
    app.before_request(csrf.check_csrf)
    app.after_request(_add_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf.csrf_token
    app.jinja_env.globals["poll_interval_ms"] = poll_interval_ms
    app.jinja_env.filters["isotime"] = format_time
    app.jinja_env.filters["shownvalue"] = shown_value
    app.jinja_env.filters["shownkey"] = shown_key
    app.jinja_env.filters["count"] = format_count
    app.jinja_env.filters["bytes"] = format_bytes
    dashboard.attach_summary(app.extensions, max_age_s=poll_interval_ms / 1000)
    for blueprint in (
        dashboard.blueprint,
        topic_admin.blueprint,
        topic_retention.blueprint,
        topics.blueprint,
        groups.blueprint,
        produce.blueprint,
        nodes.blueprint,
        liveness.blueprint,
    ):
        app.register_blueprint(blueprint)
    errors.register(app)
    return app
