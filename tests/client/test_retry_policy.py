"""Which failures the client retries: never a produce that may have been processed."""

from __future__ import annotations

from minimq.client import _calls
from minimq.client._transport import Failure, RetryPolicy

POLICY = RetryPolicy(retries=3, base_delay=0.1, max_delay=2.0)
PRODUCE = _calls.produce_batch("t", [{"value": 1}])
FETCH = _calls.fetch("t", 0, offset=0, timestamp=None, limit=1, max_bytes=None, wait_ms=0)


def test_never_sent_requests_are_retried_even_produce() -> None:
    assert POLICY.delay_after_error(PRODUCE, Failure.NOT_SENT, 0) is not None
    assert POLICY.delay_after_error(FETCH, Failure.NOT_SENT, 0) is not None


def test_maybe_processed_requests_are_retried_only_when_idempotent() -> None:
    assert POLICY.delay_after_error(PRODUCE, Failure.MAYBE_PROCESSED, 0) is None
    assert POLICY.delay_after_error(FETCH, Failure.MAYBE_PROCESSED, 0) is not None


def test_503_is_retried_only_when_idempotent() -> None:
    assert POLICY.delay_after_status(PRODUCE, 503, 0) is None
    assert POLICY.delay_after_status(FETCH, 503, 0) is not None
    assert POLICY.delay_after_status(FETCH, 404, 0) is None


def test_attempts_are_bounded_and_backoff_capped() -> None:
    assert POLICY.delay_after_error(FETCH, Failure.NOT_SENT, 3) is None
    delays = [POLICY.backoff(attempt) for attempt in range(20) for _ in range(20)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert max(POLICY.backoff(0) for _ in range(50)) <= 0.1


def test_group_fetch_advances_positions_so_it_is_not_idempotent() -> None:
    group_fetch = _calls.group_fetch(
        "g", "t", member_id="m", limit=1, wait_ms=0, commit=False, auto_offset_reset="earliest"
    )
    assert not group_fetch.idempotent
    assert _calls.commit("g", [("t", 0, 1)], member_id="m").idempotent
