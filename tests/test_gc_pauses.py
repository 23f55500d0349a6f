"""Full garbage collections (bot/serving/gc_pauses.py): measured, made rare automatically, and
run when the process has been quiet, or at the latest after LATEST_S."""
from __future__ import annotations

import asyncio
import gc
import time

from bot.serving import gc_pauses
from bot.serving.gc_pauses import EVERY_S, LATEST_S, QUIET_S, GcPauses


def test_a_full_collection_is_measured_and_shown_for_its_window():
    pauses = GcPauses(window=60)
    gc.callbacks.append(pauses.callback)
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        gc.callbacks.remove(pauses.callback)
    snap = pauses.snapshot()
    assert snap["full_collections"] == 1 and snap["full_max_ms"] >= 0.0
    assert pauses.snapshot(window=0)["full_collections"] == 0  # none in the last 0 s


def test_full_collections_wait_for_a_quiet_moment_but_not_forever():
    pauses = GcPauses()
    now = time.monotonic()
    pauses.last_full = now - EVERY_S - 1
    pauses.last_activity = now  # a message just arrived
    assert not pauses.due(now)
    assert pauses.due(now + QUIET_S)  # quiet for a second: now
    pauses.last_full = now - EVERY_S / 2
    assert not pauses.due(now + QUIET_S)  # quiet, but the last one is recent
    pauses.last_full = now - LATEST_S
    assert pauses.due(now)  # busy all along: at the latest after LATEST_S


def test_start_raises_the_full_threshold_and_collects_when_quiet(monkeypatch):
    monkeypatch.setattr(gc_pauses, "_pauses", [])
    monkeypatch.setattr(gc_pauses, "CHECK_S", 0.01)
    monkeypatch.setattr(gc_pauses, "QUIET_S", 0.05)
    monkeypatch.setattr(gc_pauses, "EVERY_S", 0.0)
    threshold = gc.get_threshold()

    async def main():
        pauses = gc_pauses.start(schedule=True)
        try:
            assert gc.get_threshold()[2] == gc_pauses.THRESHOLD_2
            gc_pauses.note_activity()
            await asyncio.sleep(0.02)
            assert pauses.scheduled == 0  # a message arrived moments ago
            await asyncio.sleep(0.2)
            assert pauses.scheduled >= 1 and gc_pauses.gc_snapshot()["full_collections"] >= 1
        finally:
            gc.callbacks.remove(pauses.callback)
            gc.set_threshold(*threshold)

    asyncio.run(main())
