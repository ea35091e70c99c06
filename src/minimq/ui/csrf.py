"""Cross-site request forgery protection for the UI's forms.

A random token is stored in the (signed) session cookie and rendered into
every form as ``csrf_token``; a state-changing request must send the same
value back, as a form field or an ``X-CSRF-Token`` header.  Another site can
make the browser send the cookie but cannot read the token, so it cannot
forge the field.  Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

SESSION_KEY = "csrf_token"
FIELD_NAME = "csrf_token"
HEADER_NAME = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    """This session's token, created on first use."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def check_csrf() -> None:
    """``before_request`` hook: reject an unsafe request without the session's token (400)."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get(SESSION_KEY)
    sent = request.form.get(FIELD_NAME) or request.headers.get(HEADER_NAME, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
        abort(400, description="The form expired or did not come from this page; reload and retry.")
