"""Consumer groups: committed offsets, lag and members; reset and delete after confirmation.

A destructive action is two POSTs: the first renders a confirmation page
restating exactly what will change, the second (carrying ``confirmed=yes``)
does it.  Both need the CSRF token, so a link alone can never reset a group.
"""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from minimq.errors import InvalidRequest
from minimq.ui.broker import broker
from minimq.ui.params import optional_int_param, parse_time, required_text_param, text_param

blueprint = Blueprint("groups", __name__)

ResetTarget = Literal["earliest", "latest", "offset", "timestamp"]
RESET_TARGETS: dict[str, ResetTarget] = {
    "earliest": "earliest",
    "latest": "latest",
    "offset": "offset",
    "timestamp": "timestamp",
}
MAX_OFFSET = 2**63 - 1
MAX_NAME = 249


def _confirmed() -> bool:
    return request.form.get("confirmed") == "yes"


@blueprint.get("/groups")
def groups_page() -> str:
    client = broker()
    groups = [client.describe_group(summary.group) for summary in client.list_groups()]
    return render_template("groups.html", groups=groups, topics=client.list_topics())


@blueprint.get("/groups/<group>")
def group_page(group: str) -> str:
    client = broker()
    return render_template(
        "groups.html",
        groups=[client.describe_group(group)],
        topics=client.list_topics(),
        single=True,
    )


@blueprint.post("/groups/<group>/reset")
def reset(group: str) -> BaseResponse | str:
    topic = required_text_param("topic", max_length=MAX_NAME)
    target = required_text_param("to", max_length=16)
    if target not in RESET_TARGETS:
        raise InvalidRequest(f"to must be one of {', '.join(RESET_TARGETS)}, got {target!r}")
    partition = optional_int_param("partition", minimum=0, maximum=1_000_000)
    offset = optional_int_param("offset", minimum=0, maximum=MAX_OFFSET)
    time_text = text_param("time", max_length=64)
    timestamp = parse_time(time_text) if time_text else None
    if target == "offset" and offset is None:
        raise InvalidRequest("resetting to an offset needs the offset")
    if target == "timestamp" and timestamp is None:
        raise InvalidRequest("resetting to a time needs the time")
    client = broker()
    if not _confirmed():
        return render_template(
            "confirm_reset.html",
            group=client.describe_group(group),
            topic=topic,
            target=target,
            partition=partition,
            offset=offset,
            time_text=time_text,
        )
    client.reset_group(
        group,
        topic,
        to=RESET_TARGETS[target],
        offset=offset,
        timestamp=timestamp,
        partition=partition,
    )
    flash(f"Group {group} reset to {target} on {topic}.", "success")
    return redirect(url_for("groups.group_page", group=group))


@blueprint.post("/groups/<group>/delete")
def delete(group: str) -> BaseResponse | str:
    client = broker()
    if not _confirmed():
        return render_template("confirm_delete.html", group=client.describe_group(group))
    client.delete_group(group)
    flash(f"Group {group} deleted.", "success")
    return redirect(url_for("groups.groups_page"))
