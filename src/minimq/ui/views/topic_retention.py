"""Editing a topic's retention: a form, a confirmation of the new values, then the change.

Three steps, as for the other changes that delete data: ``GET`` shows the
form filled with the current settings; a ``POST`` of the form checks it
(errors inline, beside what was typed) and shows the current and the new
settings side by side; the ``POST`` of that confirmation (``confirmed=yes``)
makes the change (``PATCH /v1/topics/{topic}`` through
:meth:`~minimq.client.Client.set_retention`).  The broker applies it at its
next retention pass, which the confirmation says, since a shorter retention
deletes records then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from minimq.client import TopicInfo
from minimq.errors import InvalidRequest, MiniMQError
from minimq.ui.broker import broker, status_for

blueprint = Blueprint("topic_retention", __name__)

MS_PER_HOUR = 3_600_000
BYTES_PER_MIB = 1024 * 1024
MAX_RETENTION_HOURS = 10 * 365 * 24
MAX_RETENTION_MIB = 1024 * 1024 * 1024  # 1 PiB per partition


def _number_text(amount: float) -> str:
    """``48.0`` as ``48``, ``1.5`` as ``1.5``: how a setting is typed back into the form."""
    return f"{amount:.6g}"


def _parse_amount(what: str, raw: str, *, maximum: float, unit: int) -> int | None:
    """Empty: unlimited (None); else a positive number of hours or MiB, in ms or bytes."""
    if not raw:
        return None
    try:
        amount = float(raw)
    except ValueError:
        raise InvalidRequest(f"{what} must be a number, or empty for no limit") from None
    if not math.isfinite(amount) or amount <= 0 or amount > maximum:
        raise InvalidRequest(f"{what} must be more than 0 and at most {maximum:,.0f}")
    return max(1, round(amount * unit))


@dataclass
class RetentionForm:
    """The form as typed: hours and MiB per partition, each empty for no limit."""

    hours: str = ""
    mib: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_topic(cls, info: TopicInfo) -> RetentionForm:
        ms, size = info.config.get("retention_ms"), info.config.get("retention_bytes")
        return cls(
            hours="" if ms is None else _number_text(ms / MS_PER_HOUR),
            mib="" if size is None else _number_text(size / BYTES_PER_MIB),
        )

    @classmethod
    def from_request(cls) -> RetentionForm:
        return cls(
            hours=request.form.get("retention_hours", "").strip(),
            mib=request.form.get("retention_mib", "").strip(),
        )

    def settings(self) -> tuple[int | None, int | None]:
        """``(retention_ms, retention_bytes)``; every bad field is noted in ``errors``."""
        parsed: dict[str, int | None] = {}
        for name, what, raw, maximum, unit in (
            ("retention_hours", "retention (hours)", self.hours, MAX_RETENTION_HOURS, MS_PER_HOUR),
            ("retention_mib", "size limit (MiB)", self.mib, MAX_RETENTION_MIB, BYTES_PER_MIB),
        ):
            try:
                parsed[name] = _parse_amount(what, raw, maximum=maximum, unit=unit)
            except InvalidRequest as exc:
                self.errors[name] = exc.message
        if self.errors:
            raise InvalidRequest("; ".join(self.errors.values()))
        return parsed["retention_hours"], parsed["retention_mib"]


def _render(
    info: TopicInfo,
    form: RetentionForm,
    *,
    new: tuple[int | None, int | None] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    page = render_template("topic_retention.html", topic=info, form=form, new=new)
    return page, status


@blueprint.get("/topics/<topic>/retention")
def retention_form(topic: str) -> tuple[str, int]:
    info = broker().describe_topic(topic)
    return _render(info, RetentionForm.of_topic(info))


@blueprint.post("/topics/<topic>/retention")
def update_retention(topic: str) -> BaseResponse | tuple[str, int]:
    client = broker()
    info = client.describe_topic(topic)
    form = RetentionForm.from_request()
    try:
        retention_ms, retention_bytes = form.settings()
    except InvalidRequest as error:
        return _render(info, form, status=status_for(error))
    if request.form.get("confirmed") != "yes":
        return _render(info, form, new=(retention_ms, retention_bytes))
    try:
        client.set_retention(topic, retention_ms=retention_ms, retention_bytes=retention_bytes)
    except MiniMQError as error:
        form.errors["retention_hours"] = error.message
        return _render(info, form, status=status_for(error))
    flash(f"Retention of {topic} changed; the broker applies it at its next check.", "success")
    return redirect(url_for("topics.topic_page", topic=topic))
