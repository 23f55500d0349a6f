"""The event-loop lag monitor: a deliberately blocked loop shows up in the numbers the health
endpoints answer, old wake-ups leave the window, and a line is logged periodically."""
import asyncio
import logging
import time

from bot.serving import loop_lag
from bot.serving.loop_lag import LoopLagMonitor, health_status, start_monitor


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending))
        loop.close()


def test_a_blocked_loop_is_reported_by_the_health_status():
    async def main():
        monitor = start_monitor()
        await asyncio.sleep(0.3)  # some ordinary wake-ups first
        time.sleep(0.4)  # a synchronous call holds the loop: nobody else runs meanwhile
        await asyncio.sleep(0.2)  # the monitor wakes up late, once
        assert not monitor.task.done()
        return health_status()

    status = run(main())
    assert status["status"] == "ok"
    lag = status["loop_lag"]
    assert lag["samples"] >= 5
    assert lag["max_ms"] >= 350  # the 0.4 s block, measured
    assert lag["max_since_start_ms"] >= 350
    assert lag["p50_ms"] < 50  # the other wake-ups were on time


def test_an_idle_loop_has_no_lag_to_speak_of():
    async def main():
        monitor = start_monitor()
        await asyncio.sleep(0.4)
        return monitor.snapshot()

    snap = run(main())
    assert snap["samples"] >= 4 and snap["max_ms"] < 100


def test_the_window_keeps_only_recent_wake_ups():
    now = [100.0]
    monitor = LoopLagMonitor(interval=0.05, window=60.0, clock=lambda: now[0])
    monitor.record(0.5)  # a 500 ms block at t=100
    now[0] = 150.0
    for _ in range(99):
        monitor.record(0.001)
    assert monitor.snapshot()["max_ms"] == 500.0
    assert monitor.snapshot(window=10)["max_ms"] == 1.0  # the last 10 s only
    now[0] = 161.0  # the block is now 61 s old: out of the history
    monitor.record(0.002)
    snap = monitor.snapshot()
    assert snap["max_ms"] == 2.0 and snap["max_since_start_ms"] == 500.0
    assert snap["p99_ms"] <= 2.0


def test_no_monitor_no_numbers():
    assert loop_lag.loop_lag() is None  # outside any loop

    async def main():
        return health_status()

    assert run(main())["loop_lag"] is None  # a loop nobody started a monitor on
    assert health_status("not a number")["loop_lag"] is None


def test_the_lag_is_logged_periodically(caplog):
    async def main():
        monitor = LoopLagMonitor(interval=0.02)
        task = monitor.start(log_every=0.1)
        await asyncio.sleep(0.05)
        time.sleep(0.15)
        await asyncio.sleep(0.15)
        assert not task.done()

    with caplog.at_level(logging.INFO, logger="bot.serving.loop_lag"):
        run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.serving.loop_lag"]
    assert lines and "event loop lag" in lines[0] and "p99" in lines[0]


def test_one_monitor_per_loop():
    async def main():
        first, second = start_monitor(), start_monitor()
        return first is second and not first.task.done()

    assert run(main())
