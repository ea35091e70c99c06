"""Failed UI logins, counted so that guessing the password is slow.

Two sliding windows of :data:`WINDOW_S` seconds on the monotonic clock: at
most :data:`PER_ADDRESS` failed logins from one client address, and
:data:`OVERALL` from all addresses together (a guesser with many addresses
gets no further). Past either, a login is refused without being checked
(``429`` with ``Retry-After``) until the window has room again; a successful
login clears its address. No thread sleeps: a waiting answer would hold one
of the UI's few server threads per guess.

Memory stays bounded: a failure is only recorded while the overall window has
room, so at most :data:`OVERALL` failure times are kept, and an address is
forgotten when its last failure leaves the window.

Thread-safe: waitress serves requests on several threads; one lock guards
the counters.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

WINDOW_S: Final = 60.0
PER_ADDRESS: Final = 5
OVERALL: Final = 50


class LoginThrottle:
    """Counts failed logins per address and overall (see the module docstring)."""

    def __init__(
        self,
        per_address: int = PER_ADDRESS,
        overall: int = OVERALL,
        window_s: float = WINDOW_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_address = per_address
        self._overall = overall
        self._window_s = window_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._failures: deque[tuple[float, str]] = deque()
        self._by_address: dict[str, int] = {}

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it may try now."""
        with self._lock:
            now = self._monotonic()
            self._forget_before(now - self._window_s)
            if len(self._failures) >= self._overall:
                return self._failures[0][0] + self._window_s - now
            if self._by_address.get(address, 0) >= self._per_address:
                first = next(t for t, a in self._failures if a == address)
                return first + self._window_s - now
            return None

    def failed(self, address: str) -> None:
        with self._lock:
            now = self._monotonic()
            self._forget_before(now - self._window_s)
            if len(self._failures) < self._overall:
                self._failures.append((now, address))
                self._by_address[address] = self._by_address.get(address, 0) + 1

    def succeeded(self, address: str) -> None:
        with self._lock:
            if self._by_address.pop(address, None) is not None:
                self._failures = deque(f for f in self._failures if f[1] != address)

    def _forget_before(self, cutoff: float) -> None:
        failures, by_address = self._failures, self._by_address
        while failures and failures[0][0] < cutoff:
            _, address = failures.popleft()
            left = by_address[address] - 1
            if left:
                by_address[address] = left
            else:
                del by_address[address]
