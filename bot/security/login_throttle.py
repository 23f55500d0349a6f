"""Sign-in throttling for the agent console: after a few wrong passwords for one name, or from
one address, further attempts wait, so passwords cannot be guessed at speed."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Deque, Iterable

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

    def blocked_for(self, keys: Iterable[str]) -> float:
        """Seconds until any of these keys (name, address) may try again; 0 when it may now."""
        now = self.clock()
        with self._lock:
            waits = []
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    waits.append(self.window - (now - times[0]))
            return max(waits, default=0.0)

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, name_key: str) -> None:
        with self._lock:
            self._failures.pop(name_key, None)
