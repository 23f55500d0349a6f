"""The operations on the shared state, as plain data.

A caller builds the operations one user message needs and hands them to `SharedState.run` at
once: with Redis they travel in one pipeline (one round trip), in memory they run under one lock.
Each backend (memory.py, redis_backend.py) knows how to carry out every operation here; results
come back in the same order. Keys are the caller's (`rate:sender:u1`); the backend adds its prefix.
Times to live and windows are in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Union


@dataclass(frozen=True)
class FirstTime:
    """True the first time `key` is named within `ttl` (SET NX): channel dedupe."""

    key: str
    ttl: float


@dataclass(frozen=True)
class Get:
    """The value stored under `key`, or None (missing or expired)."""

    key: str


@dataclass(frozen=True)
class Put:
    """Store `value` under `key` for `ttl` seconds (replaces what was there). Result: None."""

    key: str
    value: str
    ttl: float


@dataclass(frozen=True)
class Forget:
    """Remove `key`. Result: None."""

    key: str


@dataclass(frozen=True)
class TakeToken:
    """Spend one token of the bucket `key` (refilled at `per_second`, at most `burst`), atomically.
    Result: 0.0 when the token was spent, else the seconds until one will be there."""

    key: str
    per_second: float
    burst: int


@dataclass(frozen=True)
class ThrottleAttempt:
    """Sign-in throttling: unless one of `keys` already has `max_failures` failures within
    `window` seconds, count this attempt as a failure of every key, atomically (a burst of
    parallel guesses cannot all pass the check before any is counted).
    Result: (0.0, stamp) when it may go ahead (pass the stamp to ThrottleForgive on success),
    (seconds to wait, None) when blocked."""

    keys: Tuple[str, ...]
    max_failures: int
    window: float


@dataclass(frozen=True)
class ThrottleCheck:
    """Seconds until every one of `keys` is below `max_failures` failures again (0: it is now)."""

    keys: Tuple[str, ...]
    max_failures: int
    window: float


@dataclass(frozen=True)
class ThrottleFail:
    """Count one failure against every one of `keys` (kept for `window` seconds). Result: None."""

    keys: Tuple[str, ...]
    window: float


@dataclass(frozen=True)
class ThrottleForgive:
    """A sign-in succeeded: forget every failure of `name_key`, and take the attempt `stamp`
    back from `other_keys` (the address). Result: None."""

    name_key: str
    stamp: str
    other_keys: Tuple[str, ...]


@dataclass(frozen=True)
class Lease:
    """Take `key` for `owner` for `ttl` seconds unless someone holds it (SET NX PX): a lock that
    another component owns (the Redis lock store, bot/serving/lock_store.py) taken in the same
    round trip as the rest of a message's state. `key` is used whole (that component's own
    prefix), not under the state's prefix. Result: True taken, False held by another; None in
    memory, which cannot lease a key other processes see (the caller then takes it its own way)."""

    key: str
    owner: str
    ttl: float


@dataclass(frozen=True)
class EndLease:
    """Give `key` back if `owner` still holds it (compare-and-delete; the whole key, as Lease).
    Result: None."""

    key: str
    owner: str


Op = Union[FirstTime, Get, Put, Forget, TakeToken, ThrottleAttempt, ThrottleCheck, ThrottleFail, ThrottleForgive,
           Lease, EndLease]
