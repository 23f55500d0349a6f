"""Sign-in throttling for the agent console: after a few wrong passwords for one name, or from
one address, further attempts wait, so passwords cannot be guessed at speed.

An attempt is counted as a failure the moment it starts (`attempt`), before its body is checked
or its password compared, and taken back only when it signs in (`succeeded`). So a request that
is malformed, or that makes something fail further on, still counts (issue 16, finding 6: a
password with a lone surrogate crashed the sign-in before the failure was recorded).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Deque, Iterable, Optional, Tuple

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


class LoginThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS,
                 max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window, self.max_keys, self.clock = max_failures, window, max_keys, clock
        self._failures: "OrderedDict[str, Deque[float]]" = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> Deque[float]:
        times = self._failures.get(key) or deque()
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def _wait(self, keys: Iterable[str], now: float) -> float:
        waits = []
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                waits.append(self.window - (now - times[0]))
        return max(waits, default=0.0)

    def blocked_for(self, keys: Iterable[str]) -> float:
        """Seconds until any of these keys (name, address) may try again; 0 when it may now."""
        now = self.clock()
        with self._lock:
            return self._wait(keys, now)

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            self._record(keys, now)

    def _record(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def attempt(self, keys: Iterable[str]) -> Tuple[float, Optional[float]]:
        """(0, stamp): the attempt may go ahead and already counts as failed (pass the stamp to
        `succeeded`); (seconds to wait, None): blocked. One lock, so a burst of parallel
        guesses cannot all pass the check before any of them is counted."""
        keys = tuple(keys)
        now = self.clock()
        with self._lock:
            wait = self._wait(keys, now)
            if wait:
                return wait, None
            self._record(keys, now)
            return 0.0, now

    def succeeded(self, name_key: str, attempt: Optional[float] = None, other_keys: Iterable[str] = ()) -> None:
        """The name signed in: its failures are forgotten, and this attempt no longer counts
        against the other keys (the address)."""
        with self._lock:
            self._failures.pop(name_key, None)
            if attempt is None:
                return
            for key in other_keys:
                times = self._failures.get(key)
                if times and attempt in times:
                    times.remove(attempt)
