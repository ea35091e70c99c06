"""The UI's own login: who may use its pages, and how the session cookie says so.

Why.  The UI holds the broker token and uses it for whoever reaches its port,
so without a login of its own, exposing the UI exposes the broker: anyone
could read, export, produce and delete. With a *login secret* configured (the
UI password, ``MINIMQ_UI_PASSWORD``, or else the broker token), every page
and JSON endpoint but the login page and the static assets needs a login:
pages redirect to ``/login``, ``/api/`` endpoints answer ``401
UNAUTHORIZED``. Without any secret there is no login (a UI on 127.0.0.1 for
one developer); ``minimq ui`` then warns loudly when it listens beyond
loopback.

The session.  Flask's session cookie, signed with the app's secret key
(``MINIMQ_UI_SECRET_KEY``, or random per process), ``HttpOnly``,
``SameSite=Lax``, and ``Secure`` whenever the request came over https, or
always with ``secure_cookie`` (a UI behind a proxy that ends TLS and speaks
plain http to it). Plain http on localhost keeps working, since browsers
drop a ``Secure`` cookie sent over http. A login stores a *marker*, an HMAC
of the login secret under the secret key, never the secret itself (the
cookie is signed, not encrypted): changing the password ends every session,
and a stolen cookie says nothing about the password. A login lasts at most
:data:`SESSION_LIFETIME` after the session last changed (the signature's age
is checked on every request; requests that change nothing do not renew it),
and a login starts a new session (a fresh CSRF token: no session fixation).

Checks.  The password is compared in constant time (SHA-256 digests of both,
so not even its length leaks); failed logins are counted per client address
and overall (:mod:`minimq.ui.login_throttle`), and past the limit a login is
refused, ``429``, before it is checked. The login and logout forms carry the
CSRF token like every other form (:mod:`minimq.ui.csrf`).

Thread-safe: the state is the app's config (read-only after creation) and the
throttle, which locks.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta
from typing import Final

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse

from minimq.ui.login_throttle import LoginThrottle

log = logging.getLogger(__name__)

SESSION_LIFETIME: Final = timedelta(hours=12)
COOKIE_NAME: Final = "minimq_ui_session"
SESSION_KEY: Final = "login"
FIELD_NAME: Final = "password"
_SECRET_CONFIG: Final = "MINIMQ_UI_LOGIN_SECRET"
_MARKER_CONFIG: Final = "MINIMQ_UI_LOGIN_MARKER"
_THROTTLE_KEY: Final = "minimq_login_throttle"
# Reachable without a login: the login form itself, the files every page
# loads, and the liveness probe of container health checks.
_OPEN_ENDPOINTS: Final = frozenset(
    {"login.login_form", "login.login", "static", "bootstrap.static", "liveness.healthz"}
)

blueprint = Blueprint("login", __name__)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, ``Secure`` whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install(app: Flask, login_secret: str | None, *, secure_cookie: bool) -> None:
    """Set up the session cookie and, with ``login_secret``, the login for ``app``."""
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookie,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.config[_SECRET_CONFIG] = login_secret or None
    app.config[_MARKER_CONFIG] = _marker(app, login_secret) if login_secret else None
    app.extensions[_THROTTLE_KEY] = LoginThrottle()
    app.before_request(require_login)
    app.jinja_env.globals["login_enabled"] = bool(login_secret)
    app.register_blueprint(blueprint)


def _marker(app: Flask, secret: str) -> str:
    key = str(app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"minimq-ui-login\0" + _utf8(secret), hashlib.sha256).hexdigest()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def logged_in() -> bool:
    """True when no login is needed, or this request's session holds a current login."""
    expected = current_app.config[_MARKER_CONFIG]
    if expected is None:
        return True
    marker = session.get(SESSION_KEY)
    return isinstance(marker, str) and hmac.compare_digest(marker, expected)


def require_login() -> BaseResponse | tuple[Response, int] | None:
    """``before_request`` hook: a page without a login goes to the login form, an API call 401."""
    if logged_in() or request.endpoint in _OPEN_ENDPOINTS:
        return None
    if request.path.startswith("/api/"):
        answer = jsonify(error={"code": "UNAUTHORIZED", "message": "log in to the UI first"})
        return answer, 401
    target = None
    if request.method == "GET":
        target = request.full_path if request.query_string else request.path
    return redirect(url_for("login.login_form", next=target))


def _safe_next(target: str | None) -> str:
    # Only a path of this site: "//host" or "https://..." would send the user elsewhere.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("dashboard.index")


def _matches(given: str, secret: str) -> bool:
    # Digests of equal length, so compare_digest leaks neither the content nor the length.
    return hmac.compare_digest(
        hashlib.sha256(_utf8(given)).digest(), hashlib.sha256(_utf8(secret)).digest()
    )


def _form(error: str | None, status: int, *, retry_after: float | None = None) -> Response:
    page = render_template("login.html", error=error, next=request.values.get("next", ""))
    response = current_app.make_response((page, status))
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response


@blueprint.get("/login")
def login_form() -> BaseResponse:
    if current_app.config[_SECRET_CONFIG] is None or logged_in():
        return redirect(_safe_next(request.args.get("next")))
    return _form(None, 200)


@blueprint.post("/login")
def login() -> BaseResponse:
    secret = current_app.config[_SECRET_CONFIG]
    if secret is None:
        return redirect(url_for("dashboard.index"))
    throttle: LoginThrottle = current_app.extensions[_THROTTLE_KEY]
    address = request.remote_addr or "unknown"
    wait = throttle.retry_after(address)
    if wait is not None:
        message = f"Too many failed logins; try again in {max(1, round(wait))} s."
        return _form(message, 429, retry_after=wait)
    if not _matches(request.form.get(FIELD_NAME, ""), secret):
        throttle.failed(address)
        log.warning("failed UI login from %s", address)
        return _form("Wrong password.", 403)
    throttle.succeeded(address)
    # A new session: nothing from before the login (its CSRF token included) carries over.
    session.clear()
    session[SESSION_KEY] = current_app.config[_MARKER_CONFIG]
    log.info("UI login from %s", address)
    return redirect(_safe_next(request.form.get("next")))


@blueprint.post("/logout")
def logout() -> BaseResponse:
    session.clear()
    return redirect(url_for("login.login_form"))
