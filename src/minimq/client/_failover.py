"""Several brokers behind one client: which one is in use, and where a failed call goes next.

MiniMQ gateways over one cluster are interchangeable, so a client may be given
all of their URLs (:func:`minimq.broker_urls.parse_broker_urls`).  The policy:

- **Sticky.** Every call goes to the *current* URL.  Calls are not spread over
  the list: that would keep a connection pool per gateway warm for nothing and
  make a client's own writes and reads take different paths.
- **Fail over on trouble.** A connect that is refused or times out, a
  connection dropped or silent past the read timeout, or an answer 502, 503
  or 504 makes the next URL of the list current (after the last, the first),
  for the failed call's next attempt and for every later call.  A broker that
  recovers is used again when the list comes round to it.
- **Only where it is safe** (:class:`CallAttempts`): a request that provably
  never reached a broker (:attr:`Failure.NOT_SENT`) is sent again whatever it
  is; one that may have been processed (:attr:`Failure.MAYBE_PROCESSED`: a
  dropped connection, a read timeout, a 502/504 from a proxy) only when its
  :class:`~minimq.client._calls.Call` is idempotent: reads, commits,
  heartbeats, and produce calls carrying an ``Idempotency-Key``.  Any other
  call then raises :class:`~minimq.errors.OutcomeUnknown` (it may have been
  applied) and is never sent twice.  A 503 carries the broker's own refusal
  (``TOO_MANY_CONNECTIONS``, ``STORAGE_ERROR``, ...), which such a call gets
  as it is.
- **Bounded.** A call is tried once on every URL, each new one at once, then
  up to ``retries`` more times with capped, jittered backoff
  (:class:`~minimq.client._transport.RetryPolicy`), going on round the list:
  at most ``len(urls) + retries`` attempts, each bounded by the client timeout.
  When all fail, :class:`~minimq.errors.BrokerUnavailable` names every URL
  tried and why it failed.

Concurrency contract: one :class:`BrokerList` is shared by every thread of a
``Client`` (or every task of an ``AsyncClient``) and guards its position with
a lock; :meth:`BrokerList.failed` moves on only from the URL that failed, so
many calls failing on the same broker at once move one step, not past the
healthy one.  A :class:`CallAttempts` belongs to one call.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from minimq.broker_urls import parse_broker_urls
from minimq.client._calls import Call
from minimq.client._transport import Failure, RetryPolicy
from minimq.errors import BrokerUnavailable, OutcomeUnknown

# Answers that say "this broker cannot serve you now": a proxy with no live
# gateway (502), an overloaded or failing broker (503), a proxy timeout (504).
FAILOVER_STATUSES = frozenset({502, 503, 504})


class BrokerList:
    """The broker base URLs of one client and the one in use (thread-safe)."""

    def __init__(self, urls: str | Sequence[str]) -> None:
        self.urls = parse_broker_urls(urls)
        self._current = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> int:
        """Index in :attr:`urls` of the URL calls go to now."""
        with self._lock:
            return self._current

    def failed(self, index: int) -> None:
        """URL ``index`` failed a call: make the next one current, unless another call did."""
        with self._lock:
            if self._current == index:
                self._current = (index + 1) % len(self.urls)


def describe(exc: BaseException) -> str:
    """A short reason for a failed attempt, for messages that list several."""
    return str(exc) or type(exc).__name__


class CallAttempts:
    """One call's way through the broker list: where to send it, and whether to go on.

    Used by both clients the same way::

        attempts = CallAttempts(brokers, policy, call)
        while True:
            index = attempts.target()
            ...send to brokers.urls[index]...
            on an I/O error: delay = attempts.after_error(index, failure, exc)   # raises to stop
            on an answer:    delay = attempts.after_status(index, status)        # None: keep it
            sleep(delay)
    """

    def __init__(self, brokers: BrokerList, policy: RetryPolicy, call: Call[Any]) -> None:
        self._brokers = brokers
        self._policy = policy
        self._call = call
        # URL -> why its last attempt failed, in the order first tried.
        self._failures: dict[str, str] = {}
        self._backoffs = 0

    def restarted(self) -> CallAttempts:
        """A fresh budget for the same call (a stream that delivered records since)."""
        return CallAttempts(self._brokers, self._policy, self._call)

    def target(self) -> int:
        """Index of the URL the next attempt goes to."""
        return self._brokers.current

    def after_error(self, index: int, failure: Failure, exc: BaseException) -> float:
        """Seconds to wait before the next attempt; raises the error to give up with."""
        url = self._brokers.urls[index]
        self._failures[url] = describe(exc)
        self._brokers.failed(index)
        if failure is Failure.MAYBE_PROCESSED and not self._call.idempotent:
            raise self.outcome_unknown(url, describe(exc))
        delay = self._next_delay()
        if delay is None:
            raise self.unavailable()
        return delay

    def after_status(self, index: int, status: int) -> float | None:
        """Seconds to wait before trying again after an answer with ``status``, or ``None``.

        ``None`` means the answer stands (success, a definite error, or the
        last 503 once every attempt is spent).  Raises
        :class:`~minimq.errors.OutcomeUnknown` for a call that is not
        idempotent and got a 502 or 504: a proxy answered, and whether the
        broker behind it applied the call is unknown.
        """
        if status not in FAILOVER_STATUSES:
            return None
        url = self._brokers.urls[index]
        self._failures[url] = f"HTTP {status}"
        self._brokers.failed(index)
        if not self._call.idempotent:
            if status == 503:
                return None
            raise self.outcome_unknown(url, f"HTTP {status} from a proxy")
        return self._next_delay()

    def _next_delay(self) -> float | None:
        if self._brokers.urls[self._brokers.current] not in self._failures:
            # A broker not yet tried by this call: most likely healthy, go at once.
            return 0.0
        if self._backoffs >= self._policy.retries:
            return None
        delay = self._policy.backoff(self._backoffs)
        self._backoffs += 1
        return delay

    def unavailable(self) -> BrokerUnavailable:
        """The error once every attempt failed: each URL tried, with its last failure."""
        if len(self._brokers.urls) == 1:
            ((url, reason),) = self._failures.items()
            return BrokerUnavailable(f"broker at {url} unavailable: {reason}")
        tried = "; ".join(f"{url}: {reason}" for url, reason in self._failures.items())
        return BrokerUnavailable(f"no broker answered (tried {tried})")

    def outcome_unknown(self, url: str, reason: str) -> OutcomeUnknown:
        call = self._call
        hint = (
            " (give a produce an idempotency_key to make it safe to resend)"
            if call.method == "POST" and call.path.endswith("/records")
            else ""
        )
        return OutcomeUnknown(
            f"outcome unknown: {call.method} {call.path} was sent to the broker at {url},"
            f" which gave no answer ({reason}); it may or may not have been applied, so it"
            f" was not sent again{hint}"
        )
