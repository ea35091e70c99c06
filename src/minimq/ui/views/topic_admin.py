"""Topic administration: create a topic (partitions, retention) and delete one after confirmation.

Errors (a bad name, a topic that exists, a broker limit) re-render the form
with the error beside it and what was typed, with the broker's status.
Deleting is two POSTs, as for groups: the first shows what goes (messages,
size, the groups whose offsets go with it) and asks for the topic's name,
the second, with that name typed, deletes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from minimq.errors import InvalidRequest, MiniMQError
from minimq.ui.broker import broker, status_for
from minimq.ui.params import parse_int

blueprint = Blueprint("topic_admin", __name__)

MAX_PARTITIONS = 1024
MS_PER_HOUR = 3_600_000
MAX_RETENTION_HOURS = 10 * 365 * 24


@dataclass
class NewTopicForm:
    """The create form as typed; ``retention_hours`` empty means keep everything."""

    name: str = ""
    partitions: str = "1"
    retention_hours: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def retention_ms(self) -> int | None:
        if not self.retention_hours:
            return None
        hours = parse_int(
            "retention (hours)", self.retention_hours, minimum=1, maximum=MAX_RETENTION_HOURS
        )
        return hours * MS_PER_HOUR


def _render_new(form: NewTopicForm, status: int = 200) -> tuple[str, int]:
    return render_template("topic_new.html", form=form), status


@blueprint.get("/new-topic")
def new_topic() -> tuple[str, int]:
    return _render_new(NewTopicForm())


@blueprint.post("/new-topic")
def create_topic() -> BaseResponse | tuple[str, int]:
    form = NewTopicForm(
        name=request.form.get("name", "").strip(),
        partitions=request.form.get("partitions", "1").strip(),
        retention_hours=request.form.get("retention_hours", "").strip(),
    )
    try:
        if not form.name:
            form.errors["name"] = "the name is required"
            raise InvalidRequest(form.errors["name"])
        try:
            partitions = parse_int("partitions", form.partitions, minimum=1, maximum=MAX_PARTITIONS)
        except InvalidRequest as exc:
            form.errors["partitions"] = exc.message
            raise
        try:
            retention = form.retention_ms()
        except InvalidRequest as exc:
            form.errors["retention_hours"] = exc.message
            raise
        broker().create_topic(form.name, partitions=partitions, retention_ms=retention)
    except MiniMQError as error:
        if not form.errors:
            form.errors["name"] = error.message
        return _render_new(form, status_for(error))
    flash(f"Topic {form.name} created with {partitions} partition(s).", "success")
    return redirect(url_for("topics.topic_page", topic=form.name))


@blueprint.post("/topics/<topic>/delete")
def delete_topic(topic: str) -> BaseResponse | tuple[str, int]:
    client = broker()
    info = client.describe_topic(topic)
    groups = [g.group for g in client.list_groups() if topic in g.topics]
    typed = request.form.get("confirm_name", "")
    if request.form.get("confirmed") != "yes" or typed != topic:
        error = "type the topic's name to delete it" if "confirm_name" in request.form else ""
        page = render_template(
            "confirm_delete_topic.html", topic=info, groups=groups, error=error, typed=typed
        )
        return page, 400 if error else 200
    client.delete_topic(topic)
    flash(f"Topic {topic} deleted.", "success")
    return redirect(url_for("dashboard.index"))
