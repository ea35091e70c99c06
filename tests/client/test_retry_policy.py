"""Which failures the client retries, where, and how often: never a call that may have
been processed unless it is idempotent (the rules of ``minimq.client._failover``)."""

from __future__ import annotations

import threading

import pytest

from minimq.client import _calls
from minimq.client._failover import BrokerList, CallAttempts
from minimq.client._transport import Failure, RetryPolicy
from minimq.errors import BrokerUnavailable, OutcomeUnknown

POLICY = RetryPolicy(retries=3, base_delay=0.1, max_delay=2.0)
PRODUCE = _calls.produce_batch("t", [{"value": 1}])
KEYED_PRODUCE = _calls.produce_batch("t", [{"value": 1}], idempotency_key="k-1")
FETCH = _calls.fetch("t", 0, offset=0, timestamp=None, limit=1, max_bytes=None, wait_ms=0)
REFUSED = ConnectionRefusedError("connection refused")
RESET = ConnectionResetError("connection reset")


def attempts(call: _calls.Call[object], *urls: str) -> CallAttempts:
    return CallAttempts(BrokerList(list(urls or ["http://a:1"])), POLICY, call)


def test_never_sent_requests_are_retried_even_produce() -> None:
    assert attempts(PRODUCE).after_error(0, Failure.NOT_SENT, REFUSED) >= 0
    assert attempts(FETCH).after_error(0, Failure.NOT_SENT, REFUSED) >= 0


def test_maybe_processed_produce_raises_outcome_unknown_and_is_not_resent() -> None:
    with pytest.raises(OutcomeUnknown) as info:
        attempts(PRODUCE, "http://a:1", "http://b:2").after_error(0, Failure.MAYBE_PROCESSED, RESET)
    assert info.value.code == "OUTCOME_UNKNOWN"
    assert "http://a:1" in info.value.message and "idempotency_key" in info.value.message
    assert isinstance(info.value, BrokerUnavailable)


def test_maybe_processed_idempotent_calls_fail_over() -> None:
    for call in (FETCH, KEYED_PRODUCE):
        run = attempts(call, "http://a:1", "http://b:2")
        assert run.after_error(0, Failure.MAYBE_PROCESSED, RESET) == 0.0
        assert run.target() == 1


def test_failover_statuses() -> None:
    # A 503 is the broker's own refusal: a produce gets it as it is, fetches move on.
    assert attempts(PRODUCE).after_status(0, 503) is None
    assert attempts(FETCH, "http://a:1", "http://b:2").after_status(0, 503) == 0.0
    assert attempts(FETCH).after_status(0, 404) is None
    assert attempts(FETCH).after_status(0, 200) is None
    # A 502/504 comes from a proxy: whether the broker behind it applied a produce is unknown.
    for status in (502, 504):
        with pytest.raises(OutcomeUnknown):
            attempts(PRODUCE).after_status(0, status)
        assert attempts(KEYED_PRODUCE, "http://a:1", "http://b:2").after_status(0, status) == 0.0


def test_every_url_once_at_once_then_bounded_backoff_round_the_list() -> None:
    run = attempts(FETCH, "http://a:1", "http://b:2", "http://c:3")
    targets, delays = [], []
    with pytest.raises(BrokerUnavailable) as info:
        while True:
            index = run.target()
            targets.append(index)
            delays.append(run.after_error(index, Failure.NOT_SENT, REFUSED))
    assert targets == [0, 1, 2, 0, 1, 2]  # 3 URLs + 3 retries
    assert delays[:2] == [0.0, 0.0] and all(0 <= d <= 2.0 for d in delays[2:])
    message = info.value.message
    assert all(url in message for url in ("http://a:1", "http://b:2", "http://c:3"))
    assert "connection refused" in message


def test_one_url_keeps_the_single_broker_message() -> None:
    run = attempts(FETCH)
    with pytest.raises(BrokerUnavailable, match=r"broker at http://a:1 unavailable: .*refused"):
        while True:
            run.after_error(run.target(), Failure.NOT_SENT, REFUSED)


def test_the_broker_list_sticks_and_moves_once_per_failure() -> None:
    brokers = BrokerList("http://a:1,http://b:2")
    assert brokers.current == 0
    # Many calls failing on `a` at once move on to `b`, not round past it.
    failing = [threading.Thread(target=brokers.failed, args=(0,)) for _ in range(8)]
    for thread in failing:
        thread.start()
    for thread in failing:
        thread.join()
    assert brokers.current == 1
    brokers.failed(1)
    assert brokers.current == 0


def test_backoff_is_capped() -> None:
    delays = [POLICY.backoff(attempt) for attempt in range(20) for _ in range(20)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert max(POLICY.backoff(0) for _ in range(50)) <= 0.1


def test_group_fetch_advances_positions_so_it_is_not_idempotent() -> None:
    group_fetch = _calls.group_fetch(
        "g", "t", member_id="m", limit=1, wait_ms=0, commit=False, auto_offset_reset="earliest"
    )
    assert not group_fetch.idempotent
    assert _calls.commit("g", [("t", 0, 1)], member_id="m").idempotent
