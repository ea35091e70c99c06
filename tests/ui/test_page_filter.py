"""The page filter may skip work, never matches: checked against the broker's own page bytes.

Pages are built by the broker's serializer (:mod:`minimq.server.serialize`)
from stored records, including values as a Kafka client may send them
(numbers spelled ``1E2``, ``\\u`` escapes, spaces, non-JSON bytes).
"""

from __future__ import annotations

import string

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from minimq.client import RawFetchPage
from minimq.core.records import ClientBytes, Record
from minimq.server import serialize
from minimq.ui.search import FieldCondition, SearchQuery

# Strict JSON as a Kafka client may spell it: the broker sends it verbatim.
KAFKA_JSON = [
    b'{"sensor_id": "t-1", "n": 1E2}',
    b'{"sensor_id":"t\\u002d1","n":5}',
    b'{"name":"caf\\u00e9 \\/ bar","n":0.29999999999999999}',
    b'{"n":1e-7}',
    b'{"x":"KELVIN \xe2\x84\xaa"}',
]
# Not JSON: the broker sends these as base64.
KAFKA_BYTES = [b"plain text, not JSON", b"\x00\xff\xfe binary"]


def page_of(records: list[Record]) -> bytes:
    texts = serialize.record_texts("t", [(0, r) for r in records])
    end = records[-1].offset + 1 if records else 0
    return serialize.fetch_body("t", 0, texts, next_offset=end, high_watermark=end, start_offset=0)


def record(offset: int, value: bytes, key: bytes | None = None, headers=()) -> Record:  # type: ignore[no-untyped-def]
    return Record(offset, 1_700_000_000_000 + offset, key, value, tuple(headers))


def may_match(query: SearchQuery, body: bytes) -> bool:
    """The exact answer: does any record of the page match?"""
    keep = query.matcher()
    return any(keep(r) for r in RawFetchPage.from_body("t", 0, body).records())


def test_a_page_without_the_key_is_ruled_out_and_one_with_it_is_not() -> None:
    plain = [
        record(i, orjson.dumps({"sensor_id": f"s-{i}", "value": i}), f"dev-{i}".encode())
        for i in range(50)
    ]
    query = SearchQuery(key="needle-key")
    assert query.page_filter().rules_out(page_of(plain))
    with_needle = [*plain, record(50, b'{"value":1}', b"needle-key")]
    assert not query.page_filter().rules_out(page_of(with_needle))
    assert (
        SearchQuery(key="dev-4", key_mode="prefix").page_filter().rules_out(page_of(plain)) is False
    )
    field = SearchQuery(field=FieldCondition.parse('value.sensor_id = "s-77"'))
    assert field.page_filter().rules_out(page_of(plain))
    assert SearchQuery(text="SENSOR").page_filter().rules_out(page_of(plain)) is False
    assert SearchQuery(text="humidity").page_filter().rules_out(page_of(plain))


def test_pages_holding_kafka_spellings_are_never_ruled_out_wrongly() -> None:
    records = [record(i, v, b"k") for i, v in enumerate(KAFKA_JSON)]
    records += [record(9, ClientBytes(v), b"k\xff") for v in KAFKA_BYTES]
    queries = [
        SearchQuery(field=FieldCondition.parse('value.sensor_id = "t-1"')),
        SearchQuery(field=FieldCondition.parse("value.n = 100")),
        SearchQuery(field=FieldCondition.parse("value.n = 0.3")),
        SearchQuery(text="e-07"),
        SearchQuery(text="caf\u00e9"),
        SearchQuery(text="kelvin k"),
        SearchQuery(text="caf"),
        SearchQuery(text="k"),
        SearchQuery(text="plain text"),
        SearchQuery(text="binary"),
    ]
    for i in range(len(records)):
        body = page_of([records[i]])
        for query in queries:
            if may_match(query, body):
                assert not query.page_filter().rules_out(body), (query, records[i])


TEXT = st.text(alphabet=string.ascii_letters + string.digits + ' -_.é"\\\n/', max_size=8)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(JSON_VALUES, min_size=1, max_size=4),
    keys=st.lists(st.none() | TEXT, min_size=4, max_size=4),
    needle=TEXT,
    expected=JSON_VALUES,
)
def test_no_page_with_a_match_is_ruled_out(
    values: list[object], keys: list[str | None], needle: str, expected: object
) -> None:
    records = [
        record(
            i,
            orjson.dumps(v),
            None if keys[i] is None else keys[i].encode(),
            [("h", needle[:2].encode())],
        )
        for i, v in enumerate(values)
    ]
    body = page_of(records)
    queries = [
        SearchQuery(text=needle),
        SearchQuery(key=needle),
        SearchQuery(key=needle, key_mode="prefix"),
        SearchQuery(field=FieldCondition(path=("a",), expected=expected)),
        SearchQuery(field=FieldCondition(path=(needle or "b",), expected=needle)),
    ]
    for query in queries:
        if query.filtered and may_match(query, body):
            assert not query.page_filter().rules_out(body), query
