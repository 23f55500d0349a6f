"""The shared state in this process's memory: the embedded default (one process), the
per-process fallback while Redis is unreachable, and the private state of a limiter or throttle
built on its own (tests, tools).

Bounded: each kind of entry (values, buckets, failure lists) keeps at most `max_keys`, the least
recently written going first, so memory stays flat however many users write. One lock for
everything: a batch of operations is atomic, as a Redis script is.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from bot.shared_state.ops import (EndLease, FirstTime, Forget, Get, Lease, Op, Put, TakeToken, ThrottleAttempt,
                                  ThrottleCheck, ThrottleFail, ThrottleForgive)

MAX_KEYS = 100_000


class MemoryState:
    shared = False
    """Only this process sees it."""

    def __init__(self, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys, self.clock = max_keys, clock
        self._values: "OrderedDict[str, Tuple[float, str]]" = OrderedDict()  # key -> (expires at, value)
        self._buckets: "OrderedDict[str, Tuple[float, float]]" = OrderedDict()  # key -> (tokens, last)
        self._failures: "OrderedDict[str, Deque[Tuple[float, str]]]" = OrderedDict()  # key -> [(time, stamp)]
        self._stamps = itertools.count(1)
        self._lock = threading.Lock()
        self._apply: Dict[type, Callable[[Any, float], Any]] = {
            FirstTime: self._first_time, Get: self._get, Put: self._put, Forget: self._forget,
            TakeToken: self._take_token, ThrottleAttempt: self._attempt, ThrottleCheck: self._check,
            ThrottleFail: self._fail, ThrottleForgive: self._forgive,
            Lease: self._no_lease, EndLease: self._no_lease,
        }

    def describe(self) -> str:
        return "this process's memory"

    def run(self, *ops: Op) -> List[Any]:
        with self._lock:
            now = self.clock()
            return [self._apply[type(op)](op, now) for op in ops]

    # -- values ------------------------------------------------------------------------------------
    def _live(self, key: str, now: float) -> Optional[str]:
        item = self._values.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._values[key]
            return None
        return item[1]

    def _store(self, key: str, value: str, ttl: float, now: float) -> None:
        self._values.pop(key, None)
        self._values[key] = (now + ttl, value)
        while len(self._values) > self.max_keys:
            self._values.popitem(last=False)

    def _first_time(self, op: FirstTime, now: float) -> bool:
        if self._live(op.key, now) is not None:
            return False
        self._store(op.key, "1", op.ttl, now)
        return True

    def _get(self, op: Get, now: float) -> Optional[str]:
        return self._live(op.key, now)

    def _put(self, op: Put, now: float) -> None:
        self._store(op.key, op.value, op.ttl, now)

    def _forget(self, op: Forget, now: float) -> None:
        self._values.pop(op.key, None)

    @staticmethod
    def _no_lease(op: Any, now: float) -> None:
        """Another process's lock cannot be taken in this one's memory: None (see ops.Lease)."""
        return None

    # -- token buckets -----------------------------------------------------------------------------
    def _take_token(self, op: TakeToken, now: float) -> float:
        burst = float(max(1, op.burst))
        tokens, last = self._buckets.pop(op.key, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - last) * op.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / op.per_second if op.per_second > 0 else 60.0
        self._buckets[op.key] = (tokens, max(now, last))
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    # -- sign-in throttling ------------------------------------------------------------------------
    def _recent(self, key: str, window: float, now: float) -> Deque[Tuple[float, str]]:
        times = self._failures.get(key) or deque()
        while times and now - times[0][0] > window:
            times.popleft()
        return times

    def _wait(self, keys: Tuple[str, ...], max_failures: int, window: float, now: float) -> float:
        waits = []
        for key in keys:
            times = self._recent(key, window, now)
            if len(times) >= max_failures:
                waits.append(window - (now - times[0][0]))
        return max(waits, default=0.0)

    def _record(self, keys: Tuple[str, ...], window: float, now: float) -> str:
        stamp = f"m{next(self._stamps)}"
        for key in keys:
            times = self._recent(key, window, now)
            times.append((now, stamp))
            self._failures[key] = times
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
        return stamp

    def _attempt(self, op: ThrottleAttempt, now: float) -> Tuple[float, Optional[str]]:
        wait = self._wait(op.keys, op.max_failures, op.window, now)
        if wait:
            return wait, None
        return 0.0, self._record(op.keys, op.window, now)

    def _check(self, op: ThrottleCheck, now: float) -> float:
        return self._wait(op.keys, op.max_failures, op.window, now)

    def _fail(self, op: ThrottleFail, now: float) -> None:
        self._record(op.keys, op.window, now)

    def _forgive(self, op: ThrottleForgive, now: float) -> None:
        self._failures.pop(op.name_key, None)
        for key in op.other_keys:
            times = self._failures.get(key)
            if times:
                kept = deque(item for item in times if item[1] != op.stamp)
                self._failures[key] = kept
