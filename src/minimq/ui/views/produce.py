"""The produce form: key, headers, a JSON or text value, to any topic; re-send a message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, render_template, request
from werkzeug.datastructures import MultiDict

from minimq.client import RecordMetadata, strict_json
from minimq.errors import InvalidRequest, MiniMQError
from minimq.ui.broker import broker, status_for
from minimq.ui.params import optional_int_param, parse_int
from minimq.ui.queries import read_record

blueprint = Blueprint("produce", __name__)

FORMATS = ("json", "text")
MAX_NAME = 249


@dataclass
class ProduceForm:
    """The form's fields as typed by the user (re-rendered as-is after an error)."""

    topic: str = ""
    key: str = ""
    value: str = ""
    value_format: str = "json"
    headers: str = ""
    partition: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: MultiDict[str, str]) -> ProduceForm:
        return cls(
            topic=form.get("topic", "").strip(),
            key=form.get("key", ""),
            value=form.get("value", ""),
            value_format=form.get("format", "json"),
            headers=form.get("headers", "").strip(),
            partition=form.get("partition", "").strip(),
        )

    def parsed_value(self) -> Any:
        """The typed value, by the broker's strict rule: refused with a reason, never rewritten.

        Python's own parser would keep the last of two equal keys, read NaN, and
        accept integers orjson cannot send (a 500, the input lost).
        """
        if self.value_format == "text":
            return self.value
        try:
            return strict_json.loads(self.value)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"the value cannot be sent as JSON ({exc.message}); "
                "choose Text to send it as a string"
            ) from None

    def parsed_headers(self) -> dict[str, str] | None:
        if not self.headers:
            return None
        try:
            headers = strict_json.loads(self.headers, "headers")
        except InvalidRequest as exc:
            raise InvalidRequest(f"the headers cannot be sent as JSON ({exc.message})") from None
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise InvalidRequest('headers must be a JSON object of strings, e.g. {"source": "ui"}')
        return headers

    def validate(self) -> None:
        if not self.topic:
            raise InvalidRequest("the topic is required")
        if len(self.topic) > MAX_NAME:
            raise InvalidRequest(f"the topic name is longer than {MAX_NAME} characters")
        if self.value_format not in FORMATS:
            raise InvalidRequest("the format must be JSON or Text")


def _resend_form(topic: str, partition: int, offset: int) -> ProduceForm:
    """A form pre-filled with an existing message, for re-sending it."""
    record = read_record(broker(), topic, partition, offset)
    if record is None:
        raise InvalidRequest(f"{topic}/{partition} has no message at offset {offset} to re-send")
    if record.value_bytes is not None:
        # A value that is not JSON re-sends as text when it is UTF-8; bytes cannot be typed.
        try:
            text = record.value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                f"{topic}/{partition}@{offset} holds binary bytes, which the form cannot re-send"
            ) from None
        return ProduceForm(
            topic=topic,
            key=record.key or "",
            value=text,
            value_format="text",
            headers=json.dumps(record.headers, ensure_ascii=False) if record.headers else "",
        )
    is_text = isinstance(record.value, str)
    return ProduceForm(
        topic=topic,
        key=record.key or "",
        value=record.value if is_text else json.dumps(record.value, indent=2, ensure_ascii=False),
        value_format="text" if is_text else "json",
        headers=json.dumps(record.headers, ensure_ascii=False) if record.headers else "",
    )


def _render(
    form: ProduceForm, result: RecordMetadata | None = None, status: int = 200
) -> tuple[str, int]:
    page = render_template(
        "produce.html", form=form, result=result, topics=_known_topics(), formats=FORMATS
    )
    return page, status


def _known_topics() -> list[str]:
    # The form stays usable (any topic can be typed) when the list is unavailable.
    try:
        return [t.name for t in broker().list_topics()]
    except MiniMQError:
        return []


@blueprint.get("/produce")
def produce_form() -> tuple[str, int]:
    topic = request.args.get("topic", "").strip()
    offset = optional_int_param("offset", minimum=0, maximum=2**63 - 1)
    if topic and offset is not None:
        partition = parse_int(
            "partition", request.args.get("partition", "0"), minimum=0, maximum=1_000_000
        )
        return _render(_resend_form(topic, partition, offset))
    return _render(ProduceForm(topic=topic))


@blueprint.post("/produce")
def produce() -> tuple[str, int]:
    """Send the form's message; errors are shown in the form with what was typed."""
    form = ProduceForm.from_form(request.form)
    try:
        form.validate()
        partition = optional_int_param("partition", minimum=0, maximum=1_000_000)
        result = broker().produce(
            form.topic,
            form.parsed_value(),
            key=form.key or None,
            headers=form.parsed_headers(),
            partition=partition,
        )
    except MiniMQError as error:
        form.errors.append(error.message)
        return _render(form, status=status_for(error))
    return _render(ProduceForm(topic=form.topic, value_format=form.value_format), result)
