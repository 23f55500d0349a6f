"""How long the event loop was blocked, measured all the time: the lateness of a periodic wake-up.

Every user of a server process shares one event loop. Anything that holds it (a synchronous
database call waiting for a lock or the disk, a long computation, a full garbage collection)
delays every other request by as long, and until now that showed only in a benchmark's tail or
under a profiler. A task here sleeps `interval` seconds again and again; when it wakes up later
than asked, the loop was busy for that long (a sleep is only resumed between callbacks). The
delays of the last `window` seconds are kept: `snapshot()` gives their p50/p99/max for the
health endpoints (`GET /webhooks/rest/`, `GET /webhooks/socketio/`), and one line is logged
every `WALLET_LOOP_LAG_LOG` seconds (default 60, 0 = no log line), so a regression is visible
in production without attaching anything.

It costs one timer callback per `interval` (20 a second): nothing next to a user turn.
"""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from typing import Callable, Deque, Dict, Optional, Tuple

from bot.config import settings
from bot.serving.gc_pauses import gc_snapshot

logger = logging.getLogger(__name__)

INTERVAL = 0.05  # seconds between wake-ups
WINDOW = 60.0  # seconds of history in a snapshot


def _percentile(ordered, p: float) -> float:
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class LoopLagMonitor:
    """Keeps (time, delay) of each wake-up of the last `window` seconds."""

    def __init__(self, interval: float = INTERVAL, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.window, self.clock = interval, window, clock
        self._samples: Deque[Tuple[float, float]] = deque()
        self.worst = 0.0  # since start
        self.task: Optional[asyncio.Task] = None

    def record(self, lag: float) -> None:
        now = self.clock()
        self._samples.append((now, lag))
        self.worst = max(self.worst, lag)
        while self._samples and self._samples[0][0] < now - self.window:
            self._samples.popleft()

    def snapshot(self, window: Optional[float] = None) -> Dict[str, float]:
        """Delays of the wake-ups of the last `window` seconds (at most the kept history), in
        milliseconds."""
        window = self.window if window is None else max(0.0, min(self.window, window))
        since = self.clock() - window
        lags = sorted(lag for at, lag in self._samples if at >= since)
        if not lags:
            return {"samples": 0, "window_s": window, "interval_ms": self.interval * 1000}
        return {
            "samples": len(lags),
            "window_s": window,
            "interval_ms": self.interval * 1000,
            "p50_ms": round(_percentile(lags, 50) * 1000, 1),
            "p99_ms": round(_percentile(lags, 99) * 1000, 1),
            "max_ms": round(lags[-1] * 1000, 1),
            "max_since_start_ms": round(self.worst * 1000, 1),
        }

    async def run(self, log_every: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        next_log = loop.time() + log_every if log_every > 0 else None
        while True:
            asked = loop.time()
            await asyncio.sleep(self.interval)
            woke = loop.time()
            self.record(max(0.0, woke - asked - self.interval))
            if next_log is not None and woke >= next_log:
                next_log = woke + log_every
                self.log()

    def log(self) -> None:
        snap = self.snapshot()
        if snap["samples"]:
            logger.info("event loop lag over the last %.0f s: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d wake-ups)",
                        min(self.window, snap["samples"] * self.interval), snap["p50_ms"], snap["p99_ms"],
                        snap["max_ms"], snap["samples"])

    def start(self, log_every: float = 0.0) -> asyncio.Task:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run(log_every), name="loop-lag-monitor")
        return self.task


_monitors: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLagMonitor]" = weakref.WeakKeyDictionary()


def start_monitor() -> LoopLagMonitor:
    """This event loop's monitor, started on first call (a server process calls it at start)."""
    loop = asyncio.get_running_loop()
    monitor = _monitors.get(loop)
    if monitor is None:
        monitor = _monitors[loop] = LoopLagMonitor()
    monitor.start(settings().loop_lag_log_seconds)
    return monitor


def loop_lag(window: Optional[float] = None) -> Optional[Dict[str, float]]:
    """The running loop's snapshot, or None when no monitor runs on it."""
    try:
        monitor = _monitors.get(asyncio.get_running_loop())
    except RuntimeError:
        return None
    return monitor.snapshot(window) if monitor is not None else None


def health_status(window: Optional[str] = None) -> Dict[str, object]:
    """What the channels' health endpoints answer: ok, this process's loop lag (over the last
    `window` seconds when the request asks, `?lag_window=10`; a benchmark reads its own run's)
    and its full garbage collections of the last minute (gc_pauses.py)."""
    try:
        seconds = float(window) if window else None
    except ValueError:
        seconds = None
    if seconds is not None and not seconds == seconds:  # NaN
        seconds = None
    return {"status": "ok", "loop_lag": loop_lag(seconds), "gc": gc_snapshot(seconds)}
