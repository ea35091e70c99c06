"""Reversible escaping of names into NATS tokens, and the namespace boundary."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimq.errors import InvalidConfig
from minimq.jetstream.names import Names, escape, unescape

TOKEN = re.compile(r"[A-Za-z0-9_-]*")
KV_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")


@given(st.text())
def test_escape_round_trips_any_text(name: str) -> None:
    assert unescape(escape(name)) == name


@given(st.text(min_size=1))
def test_escaped_names_are_single_subject_tokens_and_kv_keys(name: str) -> None:
    token = escape(name)
    assert TOKEN.fullmatch(token)
    assert KV_KEY.fullmatch(token)
    assert "." not in token and "*" not in token and ">" not in token


@given(st.text(), st.text())
def test_escape_is_injective(first: str, second: str) -> None:
    if first != second:
        assert escape(first) != escape(second)


@pytest.mark.parametrize("token", ["a.b", "_6", "_zz", "_61", "_2E", "a b", "*", ">"])
def test_unescape_refuses_what_escape_cannot_produce(token: str) -> None:
    with pytest.raises(ValueError):
        unescape(token)


def test_topic_names_with_nats_specials_stay_inside_their_token() -> None:
    names = Names("ns")
    subject = names.notification_subject("a.*.>", 3)
    assert subject.split(".")[:2] == ["ns", "ntf"]
    assert len(subject.split(".")) == 4
    assert names.parse_notification(subject) == ("a.*.>", 3)


@pytest.mark.parametrize("namespace", ["", "a.b", "a b", "a*", "x" * 65, "ns>", "$KV", "a/b"])
def test_namespace_is_one_plain_token(namespace: str) -> None:
    with pytest.raises(InvalidConfig):
        Names(namespace)


NAMESPACES = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
TOPIC_IDS = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)


def _every_name(names: Names, topic_id: str, partition: int) -> set[str]:
    return {
        names.partition_stream(topic_id, partition),
        f"KV_{names.topics_bucket}",
        f"KV_{names.offsets_bucket}",
        f"KV_{names.producer_ids_bucket}",
    }


@given(NAMESPACES, NAMESPACES, TOPIC_IDS, TOPIC_IDS, st.integers(0, 9999), st.integers(0, 9999))
def test_two_namespaces_never_share_a_stream_or_bucket(
    first: str, second: str, first_id: str, second_id: str, p1: int, p2: int
) -> None:
    if first == second:
        return
    ours, theirs = Names(first), Names(second)
    assert not _every_name(ours, first_id, p1) & _every_name(theirs, second_id, p2)
    assert ours.partition_subject(first_id, p1).split(".")[0] == first
    assert theirs.parse_notification(ours.notification_subject("t", p1)) is None


@given(st.text(), st.integers(min_value=0, max_value=10_000))
def test_no_topic_name_reaches_another_namespace(topic: str, partition: int) -> None:
    ours, theirs = Names("ns"), Names("nsx")
    subject = ours.notification_subject(topic, partition)
    assert subject.startswith("ns.ntf.")
    assert theirs.parse_notification(subject) is None
    assert ours.parse_notification(subject) == (topic, partition)


def test_streams_are_named_by_topic_id_and_refuse_anything_else() -> None:
    names = Names("ns")
    topic_id = "0" * 32
    assert names.partition_stream(topic_id, 2) == f"ns-{topic_id}-2"
    assert names.partition_subject(topic_id, 2) == f"ns.rec.{topic_id}.2.r"
    assert names.commit_subject(topic_id, 2) == f"ns.rec.{topic_id}.2.c"
    with pytest.raises(ValueError):
        names.partition_stream("../../x", 0)
