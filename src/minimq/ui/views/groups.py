"""Consumer groups: lag per partition, members, a live lag chart; reset after a preview.

A destructive action is two POSTs: the first renders a preview restating
exactly what will change (for a reset, every partition's committed offset now
and after), the second (carrying ``confirmed=yes``) does it.  Both need the
CSRF token, so a link alone can never reset a group.  A reset form with a
mistake is shown again with the error beside the field and what was typed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from minimq.client import GroupInfo
from minimq.errors import InvalidRequest, MiniMQError
from minimq.ui.broker import broker, status_for
from minimq.ui.params import parse_int, parse_time
from minimq.ui.reset_preview import PreviewRow, preview_reset

blueprint = Blueprint("groups", __name__)

ResetTarget = Literal["earliest", "latest", "offset", "timestamp"]
RESET_TARGETS: dict[str, ResetTarget] = {
    "earliest": "earliest",
    "latest": "latest",
    "offset": "offset",
    "timestamp": "timestamp",
}
MAX_OFFSET = 2**63 - 1


@dataclass
class ResetForm:
    """The reset form as typed, and the error of each field."""

    topic: str = ""
    to: str = "earliest"
    offset: str = ""
    time: str = ""
    partition: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_request(cls) -> ResetForm:
        values = request.form
        return cls(
            topic=values.get("topic", "").strip(),
            to=values.get("to", "earliest").strip(),
            offset=values.get("offset", "").strip(),
            time=values.get("time", "").strip(),
            partition=values.get("partition", "").strip(),
        )

    def parsed(self) -> tuple[ResetTarget, int | None, int | None, int | None]:
        """``(target, offset, timestamp, partition)``; fills ``errors`` instead of raising."""
        if not self.topic:
            self.errors["topic"] = "choose a topic"
        if self.to not in RESET_TARGETS:
            self.errors["to"] = f"to must be one of {', '.join(RESET_TARGETS)}, got {self.to!r}"
        offset = partition = timestamp = None
        try:
            if self.offset:
                offset = parse_int("offset", self.offset, minimum=0, maximum=MAX_OFFSET)
            elif self.to == "offset":
                self.errors["offset"] = "resetting to an offset needs the offset"
        except InvalidRequest as exc:
            self.errors["offset"] = exc.message
        try:
            if self.time:
                timestamp = parse_time(self.time)
            elif self.to == "timestamp":
                self.errors["time"] = "resetting to a time needs the time"
        except InvalidRequest as exc:
            self.errors["time"] = exc.message
        try:
            if self.partition:
                partition = parse_int("partition", self.partition, minimum=0, maximum=1_000_000)
        except InvalidRequest as exc:
            self.errors["partition"] = exc.message
        return RESET_TARGETS.get(self.to, "earliest"), offset, timestamp, partition


def _confirmed() -> bool:
    return request.form.get("confirmed") == "yes"


def group_json(group: GroupInfo) -> dict[str, object]:
    return {
        "group": group.group,
        "state": group.state,
        "generation": group.generation,
        "protocol_type": group.protocol_type,
        "total_lag": group.total_lag,
        "members": len(group.members),
        "offsets": [
            {
                "topic": o.topic,
                "partition": o.partition,
                "committed_offset": o.committed_offset,
                "end_offset": o.end_offset,
                "lag": o.lag,
            }
            for o in group.offsets
        ],
        "now": int(time.time() * 1000),
    }


@blueprint.get("/groups")
def groups_page() -> str:
    client = broker()
    groups = [client.describe_group(summary.group) for summary in client.list_groups()]
    return render_template("groups.html", groups=groups)


def _render_group(group: str, form: ResetForm, status: int = 200) -> tuple[str, int]:
    return render_template("group.html", group=broker().describe_group(group), form=form), status


@blueprint.get("/groups/<group>")
def group_page(group: str) -> tuple[str, int]:
    return _render_group(group, ResetForm())


@blueprint.get("/api/groups/<group>")
def group_api(group: str) -> Response:
    """The group's offsets and lag now, for the live table and lag chart."""
    return jsonify(group_json(broker().describe_group(group)))


@blueprint.post("/groups/<group>/reset")
def reset(group: str) -> BaseResponse | tuple[str, int]:
    form = ResetForm.from_request()
    target, offset, timestamp, partition = form.parsed()
    if form.errors:
        try:
            return _render_group(group, form, 400)
        except MiniMQError:
            # Without the group to show the form in, the mistake is still the news.
            raise InvalidRequest("; ".join(form.errors.values())) from None
    client = broker()
    try:
        rows: list[PreviewRow] = preview_reset(
            client,
            group,
            form.topic,
            target,
            offset=offset,
            timestamp=timestamp,
            partition=partition,
        )
    except MiniMQError as error:
        form.errors["form"] = error.message
        return _render_group(group, form, status_for(error))
    if not _confirmed():
        page = render_template("confirm_reset.html", group=group, form=form, rows=rows)
        return page, 200
    client.reset_group(
        group, form.topic, to=target, offset=offset, timestamp=timestamp, partition=partition
    )
    flash(f"Group {group} reset to {target} on {form.topic}.", "success")
    return redirect(url_for("groups.group_page", group=group))


@blueprint.post("/groups/<group>/delete")
def delete(group: str) -> BaseResponse | str:
    client = broker()
    if not _confirmed():
        return render_template("confirm_delete.html", group=client.describe_group(group))
    client.delete_group(group)
    flash(f"Group {group} deleted.", "success")
    return redirect(url_for("groups.groups_page"))
