"""Sign-in throttling for the agent console: after a few wrong passwords for one name, or from
one address, further attempts wait, so passwords cannot be guessed at speed.

An attempt is counted as a failure the moment it starts (`attempt`), before its body is checked
or its password compared, and taken back only when it signs in (`succeeded`). So a request that
is malformed, or that makes something fail further on, still counts (issue 16, finding 6: a
password with a lone surrogate crashed the sign-in before the failure was recorded).

The failures are kept in the shared state (bot/shared_state): with WALLET_REDIS_URL set, every
console process behind one address counts the same guesses (an atomic script checks and counts
in one step); otherwise in this process's memory.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Optional, Tuple

from bot.shared_state import (MemoryState, SharedState, ThrottleAttempt, ThrottleCheck, ThrottleFail,
                              ThrottleForgive, shared_state)
from bot.shared_state.memory import MAX_KEYS

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


class LoginThrottle:
    """`shared`: the failures live in the process's shared state (the console); otherwise this
    throttle keeps them to itself, in memory, with `clock` and `max_keys` (tests)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS,
                 max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic, shared: bool = False) -> None:
        self.max_failures, self.window = max_failures, window
        self._own: Optional[SharedState] = None if shared else MemoryState(max_keys=max_keys, clock=clock)

    @property
    def state(self) -> SharedState:
        return self._own if self._own is not None else shared_state()

    def _key(self, key: str) -> str:
        return f"signin:{key}"

    def _keys(self, keys: Iterable[str]) -> Tuple[str, ...]:
        return tuple(self._key(k) for k in keys)

    def blocked_for(self, keys: Iterable[str]) -> float:
        """Seconds until any of these keys (name, address) may try again; 0 when it may now."""
        return self.state.run(ThrottleCheck(self._keys(keys), self.max_failures, self.window))[0]

    def failed(self, keys: Iterable[str]) -> None:
        self.state.run(ThrottleFail(self._keys(keys), self.window))

    def attempt(self, keys: Iterable[str]) -> Tuple[float, Optional[str]]:
        """(0, stamp): the attempt may go ahead and already counts as failed (pass the stamp to
        `succeeded`); (seconds to wait, None): blocked. One atomic step, so a burst of parallel
        guesses cannot all pass the check before any of them is counted."""
        return self.state.run(ThrottleAttempt(self._keys(keys), self.max_failures, self.window))[0]

    def succeeded(self, name_key: str, attempt: Optional[str] = None, other_keys: Iterable[str] = ()) -> None:
        """The name signed in: its failures are forgotten, and this attempt no longer counts
        against the other keys (the address)."""
        self.state.run(ThrottleForgive(self._key(name_key), attempt or "", self._keys(other_keys)))
