"""The produce form applies the broker's strict JSON rule: an inline error, the input kept.

Before: ``12345678901234567890123`` was a 500 that lost what was typed, and
NaN, Infinity and duplicate keys were silently rewritten (``{"v": NaN}``
stored as ``{"v": null}``).
"""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient
from markupsafe import escape

from minimq.client import Client
from minimq.errors import TopicNotFound
from tests.ui.conftest import CSRF

REFUSED = [
    ("12345678901234567890123", "integer outside the 64-bit range"),
    ('{"n": -9223372036854775809}', "integer outside the 64-bit range"),
    ('{"v": NaN}', "NaN is not valid JSON"),
    ("[Infinity]", "Infinity is not valid JSON"),
    ('{"v": -Infinity}', "-Infinity is not valid JSON"),
    ('{"v": 1, "v": 2}', "duplicate key &#39;v&#39; in JSON object"),
    ("1e400", "too large for a double"),
    ('"\\ud800"', "lone surrogate"),
    ("[" * 62 + "]" * 62, "nested deeper than 61 levels"),
    ("{oops", "not valid JSON"),
]


def send(web: FlaskClient, topic: str, value: str, **fields: str) -> tuple[int, str]:
    response = web.post(
        "/produce",
        data={"csrf_token": CSRF, "topic": topic, "value": value, "format": "json", **fields},
    )
    return response.status_code, response.get_data(as_text=True)


def error_of(page: str) -> str:
    start = page.index('data-testid="produce-error">') + len('data-testid="produce-error">')
    return page[start : page.index("</div>", start)]


@pytest.mark.parametrize(("typed", "reason"), REFUSED, ids=[t[:30] for t, _ in REFUSED])
def test_value_that_is_not_strict_json_is_an_inline_error_and_is_kept(
    web: FlaskClient, broker_client: Client, typed: str, reason: str
) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    status, page = send(web, topic, typed, key="k1")
    assert status == 400
    assert reason in error_of(page)
    assert "choose Text to send it as a string" in error_of(page)
    assert f">{escape(typed)}</textarea>" in page
    assert 'value="k1"' in page
    with pytest.raises(TopicNotFound):
        broker_client.describe_topic(topic)


def test_the_value_is_checked_before_the_broker_is_asked(down_web: FlaskClient) -> None:
    # The broker is down: a refusal of the value itself proves nothing was sent.
    status, page = send(down_web, "t", '{"v": NaN}')
    assert status == 400
    assert "NaN is not valid JSON" in error_of(page)


def test_duplicate_header_keys_are_an_error_too(web: FlaskClient) -> None:
    status, page = send(web, "t", "1", headers='{"h": "a", "h": "b"}')
    assert status == 400
    assert "the headers cannot be sent as JSON (duplicate key" in error_of(page)


def test_the_largest_integers_are_sent_exactly(web: FlaskClient, broker_client: Client) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    status, _ = send(web, topic, '{"max": 18446744073709551615, "min": -9223372036854775808}')
    assert status == 200
    stored = broker_client.fetch(topic, 0).records[0].value
    assert stored == {"max": 2**64 - 1, "min": -(2**63)}
