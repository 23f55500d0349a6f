"""Full garbage collections: measured, and moved to the moments when no user waits.

A server process keeps thousands of conversations in memory (the tracker cache, their dialogue
states), and CPython's full collection (generation 2) walks every one of those objects while the
event loop stands still. After a few minutes of traffic that is a few hundred milliseconds, and
it fires whenever allocation counts say so: in a peak-day burst it landed in the opening second
and became the p99 (docs/performance.md, "Peak-day burst").

So in a server process (`start()`):
- every collection's pause is recorded (`gc.callbacks`); the health endpoints show the full
  collections of the last minute (count, longest) beside the loop lag;
- automatic full collections are made rare (generation 2's threshold raised to `THRESHOLD_2`);
- a task collects in full when the process has been quiet (no message handled) for
  `QUIET_S` seconds and the last full collection is `EVERY_S` seconds old, and in any case
  once `LATEST_S` seconds have passed, so memory held by reference cycles is still returned.
Young generations are collected as before (short pauses: they only walk recent objects).
`WALLET_GC_SCHEDULE=0` keeps CPython's own schedule (the pauses are still measured).
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

THRESHOLD_2 = 1000
"""Generation-1 collections between two automatic full collections (CPython's default: 10)."""
QUIET_S = 1.0
EVERY_S = 60.0
LATEST_S = 600.0
WINDOW_S = 60.0
CHECK_S = 0.25


class GcPauses:
    """Pauses of the collections of the last `window` seconds, by generation."""

    def __init__(self, window: float = WINDOW_S) -> None:
        self.window = window
        self._started: Optional[float] = None
        self.full: Deque[Tuple[float, float]] = deque()  # (ended at, seconds)
        self.young_worst = 0.0
        self.last_full = time.monotonic()
        self.last_activity = 0.0
        self.scheduled = 0

    def callback(self, phase: str, info: Dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
            return
        if self._started is None:
            return
        pause, self._started = now - self._started, None
        if info.get("generation") == 2:
            ended = time.monotonic()
            self.full.append((ended, pause))
            self.last_full = ended
            while self.full and self.full[0][0] < ended - self.window:
                self.full.popleft()
        else:
            self.young_worst = max(self.young_worst, pause)

    def snapshot(self, window: Optional[float] = None) -> Dict[str, Any]:
        """The full collections of the last `window` seconds (at most the kept minute)."""
        since = time.monotonic() - (self.window if window is None else max(0.0, min(self.window, window)))
        pauses = [p for at, p in self.full if at >= since]
        return {"full_collections": len(pauses), "full_max_ms": round(max(pauses, default=0.0) * 1000, 1),
                "young_max_since_start_ms": round(self.young_worst * 1000, 1),
                "scheduled_full_collections": self.scheduled}

    def busy(self) -> None:
        """A message is being handled (channels call it through `note_activity`)."""
        self.last_activity = time.monotonic()

    def due(self, now: float) -> bool:
        quiet = now - self.last_activity >= QUIET_S and now - self.last_full >= EVERY_S
        return quiet or now - self.last_full >= LATEST_S

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            if self.due(time.monotonic()):
                self.scheduled += 1
                gc.collect()


_pauses: List[GcPauses] = []


def start(schedule: bool) -> GcPauses:
    """Measure collections in this process; with `schedule`, move full ones to quiet moments.
    Called once per server process, on its event loop, after the model is loaded and frozen."""
    if _pauses:
        return _pauses[0]
    pauses = GcPauses()
    gc.callbacks.append(pauses.callback)
    _pauses.append(pauses)
    if schedule:
        first, second, _ = gc.get_threshold()
        gc.set_threshold(first, second, THRESHOLD_2)
        asyncio.get_running_loop().create_task(pauses.run(), name="quiet-full-gc")
    return pauses


def note_activity() -> None:
    if _pauses:
        _pauses[0].busy()


def gc_snapshot(window: Optional[float] = None) -> Optional[Dict[str, Any]]:
    return _pauses[0].snapshot(window) if _pauses else None
