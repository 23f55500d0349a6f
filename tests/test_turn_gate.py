"""The per-process turn gate: arrival order, slot count, cancellation, switched off."""
import asyncio

import pytest

from bot.serving.turn_gate import TurnGate, one_turn, turn_slots


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_turns_run_whole_and_in_arrival_order():
    gate = TurnGate(1)
    log = []

    async def turn(name):
        async with gate.turn():
            log.append(f"{name}+")
            await asyncio.sleep(0)  # a network await: nobody else may start meanwhile
            await asyncio.sleep(0.001)
            log.append(f"{name}-")

    async def main():
        await asyncio.gather(*(turn(n) for n in "abcde"))

    run(main())
    assert log == [x for n in "abcde" for x in (f"{n}+", f"{n}-")]
    assert gate.busy == 0 and gate.waiting == 0


def test_a_newcomer_does_not_overtake_a_woken_waiter():
    gate = TurnGate(1)

    async def main():
        await gate.acquire()
        second = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)
        gate.release()  # handed to the waiter, which has not run yet
        third = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)
        assert second.done() and not third.done() and gate.busy == 1
        gate.release()
        await third
        gate.release()

    run(main())
    assert gate.busy == 0


def test_slots_bound_concurrency():
    gate = TurnGate(2)
    running, peak = 0, 0

    async def turn():
        nonlocal running, peak
        async with gate.turn():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001)
            running -= 1

    async def main():
        await asyncio.gather(*(turn() for _ in range(10)))

    run(main())
    assert peak == 2 and gate.busy == 0


def test_a_cancelled_waiter_does_not_block_the_others():
    gate = TurnGate(1)
    done = []

    async def turn(name, hold=0.002):
        async with gate.turn():
            await asyncio.sleep(hold)
            done.append(name)

    async def main():
        a = asyncio.ensure_future(turn("a"))
        await asyncio.sleep(0)
        b = asyncio.ensure_future(turn("b"))
        c = asyncio.ensure_future(turn("c"))
        await asyncio.sleep(0)
        b.cancel()  # the client went away while waiting
        await asyncio.gather(a, c)
        with pytest.raises(asyncio.CancelledError):
            await b

    run(main())
    assert done == ["a", "c"] and gate.busy == 0 and gate.waiting == 0


def test_an_error_in_a_turn_frees_the_slot():
    gate = TurnGate(1)

    async def main():
        with pytest.raises(RuntimeError):
            async with gate.turn():
                raise RuntimeError("boom")
        async with gate.turn():
            return gate.busy

    assert run(main()) == 1
    assert gate.busy == 0


def test_slots_from_the_environment(monkeypatch):
    from bot.config import reload_settings

    monkeypatch.setenv("WALLET_TURN_SLOTS", "0")
    reload_settings()
    assert turn_slots() == 0

    async def off():
        async with one_turn():
            return "ran without a gate"

    assert run(off()) == "ran without a gate"
    monkeypatch.setenv("WALLET_TURN_SLOTS", "nonsense")
    reload_settings()
    assert turn_slots() == 2
    with pytest.raises(ValueError):
        TurnGate(0)


def test_a_turn_waiting_for_its_lock_lets_other_turns_run():
    """One slot; turn a waits (slot_given_up) for something held elsewhere: b and c run meanwhile,
    then a gets a slot again and finishes; the count of busy slots stays right throughout."""
    from bot.serving.turn_gate import slot_given_up, turn_gate

    log = []

    async def main():
        gate = turn_gate()
        released = asyncio.Event()

        async def waiting_turn():
            async with one_turn():
                async with slot_given_up():
                    log.append("a waits")
                    await released.wait()
                assert gate.busy == 1  # its slot is back
                log.append("a done")

        async def short_turn(name):
            async with one_turn():
                log.append(name)
                if name == "c":
                    released.set()

        a = asyncio.ensure_future(waiting_turn())
        await asyncio.sleep(0.01)
        await asyncio.gather(short_turn("b"), short_turn("c"), a)
        return gate

    loop = asyncio.new_event_loop()
    try:
        import bot.serving.turn_gate as tg

        original = tg.turn_slots
        tg.turn_slots = lambda: 1
        gate = loop.run_until_complete(main())
    finally:
        tg.turn_slots = original
        loop.close()
    assert log == ["a waits", "b", "c", "a done"]
    assert gate.busy == 0 and gate.waiting == 0


def test_a_turn_cancelled_while_it_queues_again_frees_nothing_twice():
    from bot.serving.turn_gate import TurnGate, _Slot, _slot, slot_given_up

    gate = TurnGate(1)

    async def main():
        await gate.acquire()
        slot = _Slot(gate, held=True)
        _slot.set(slot)

        async def waiter():
            async with slot_given_up():
                await asyncio.sleep(0)

        blocker = asyncio.ensure_future(gate.acquire())  # takes the slot the waiter gives up
        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0.01)
        assert blocker.done() and not task.done()  # queued for a slot again
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not slot.held and gate.busy == 1 and gate.waiting == 0
        gate.release()

    run(main())
    assert gate.busy == 0
