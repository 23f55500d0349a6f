"""At peak load, at most two user turns in progress per server process; the rest wait in
arrival order.

Without a gate, every message in flight shares the CPU: a turn yields at each network `await`
(lock store, tracker store, database) and the other turns run meanwhile, so a turn's latency
grows with its own size times the number of turns beside it. Hand-off turns (about twice the
CPU of an FAQ answer) arrived in bursts and set the p99. With the gate a started turn shares
the CPU with one other at most, while later ones wait their turn: each user waits about as long
as the others, whatever they asked. Two slots rather than one so the CPU has work while a turn
waits for Redis or the database (one slot lost 10-20 % throughput in `make bench`-style runs).

`WALLET_TURN_SLOTS` sets the number of slots (default 2; 0 switches the gate off). Waiting is
strictly in arrival order (asyncio.Semaphore of Python 3.10 lets a newcomer overtake a woken
waiter). A turn takes at most one conversation lock at a time, after the gate, so the gate and
the locks cannot wait on each other.

A turn that must wait for its conversation's lock gives its slot to the next turn meanwhile
(`slot_given_up`, used by the Redis lock store) and queues for a slot again once it has the
lock. Without that, two messages waiting for the lock of an instance that had just died (up to
its lease, bot/serving/lock_store.py) held both slots and the surviving instance answered
nobody for 9.5 s in the kill test under 50 users.
"""
from __future__ import annotations

import asyncio
import weakref
from collections import deque
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import AsyncIterator, Deque, Optional
from bot.config import settings


class TurnGate:
    """A FIFO semaphore: `release` hands the slot straight to the oldest waiter."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self.busy = 0
        self._waiters: Deque[asyncio.Future] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> None:
        if self.busy < self.slots and not self._waiters:
            self.busy += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was ours already: pass it on
            else:
                try:
                    self._waiters.remove(future)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)  # the slot moves on; busy stays the same
                return
        self.busy -= 1

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


def turn_slots() -> int:
    return settings().turn_slots


_gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TurnGate]" = weakref.WeakKeyDictionary()


def turn_gate() -> Optional[TurnGate]:
    """This event loop's gate (None when switched off)."""
    slots = turn_slots()
    if slots == 0:
        return None
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = TurnGate(slots)
    return gate


@dataclass
class _Slot:
    gate: TurnGate
    held: bool


_slot: ContextVar[Optional[_Slot]] = ContextVar("wallet_turn_slot", default=None)


@asynccontextmanager
async def one_turn(gated: bool = True) -> AsyncIterator[None]:
    """Wrap the handling of one user message (`gated=False`: not this one)."""
    gate = turn_gate() if gated else None
    if gate is None:
        yield
        return
    await gate.acquire()
    slot = _Slot(gate, held=True)
    token = _slot.set(slot)
    try:
        yield
    finally:
        _slot.reset(token)
        if slot.held:
            gate.release()


@asynccontextmanager
async def slot_given_up() -> AsyncIterator[None]:
    """While the current turn waits for something another turn holds (its conversation's lock),
    its slot goes to the next turn; afterwards it queues for a slot again. No-op outside a gated turn."""
    slot = _slot.get()
    if slot is None or not slot.held:
        yield
        return
    slot.gate.release()
    slot.held = False
    try:
        yield
    finally:
        await slot.gate.acquire()
        slot.held = True
