"""One place for the runtime state every process must see alike.

With several Sanic workers or Rasa instances a user's messages land on any of them, so what
decides about a message cannot live in one process's memory: the channels' dedupe of Telegram
`update_id`s and WeChat `MsgId`s (a retry may reach another process), the buttons WeChat
offered (the user answers "1" to whichever process), the rate-limit buckets (N processes must
not mean N times the budget), console sign-in throttling, and the masker's memory of the digits
that ended a user's previous message. They all live here.

`shared_state()` is Redis when `WALLET_REDIS_URL` is set (the workers of `WORKERS=N make run`
and the scale-out set it; keys start with `WALLET_REDIS_PREFIX`), and this process's memory
otherwise (the embedded default: one process needs nothing else). Both take the same
operations (ops.py) and give the same answers; a batch of them is one Redis round trip.
When Redis cannot be used the process carries on in memory and says so once
(redis_backend.py). What is shared where: README, "Scale-out".
"""
from __future__ import annotations

import logging
import threading
from typing import Any, List, Optional, Protocol, Tuple

from bot.config import settings
from bot.shared_state.memory import MemoryState
from bot.shared_state.ops import (EndLease, FirstTime, Forget, Get, Lease, Op, Put, TakeToken, ThrottleAttempt,
                                  ThrottleCheck, ThrottleFail, ThrottleForgive)

__all__ = ["SharedState", "shared_state", "MemoryState", "Op", "FirstTime", "Get", "Put", "Forget", "TakeToken",
           "ThrottleAttempt", "ThrottleCheck", "ThrottleFail", "ThrottleForgive", "Lease", "EndLease"]

logger = logging.getLogger(__name__)


class SharedState(Protocol):
    shared: bool
    """True when other processes see the same state (Redis)."""

    def run(self, *ops: Op) -> List[Any]:
        """Carry out `ops` in order (one round trip) and return their results in order. Never raises
        for an unreachable store (the Redis backend falls back to memory)."""

    def describe(self) -> str:
        """Where the state lives, for logs."""


_current: Optional[Tuple[Tuple[str, str], SharedState]] = None
_lock = threading.Lock()


def open_state(url: str, prefix: str) -> SharedState:
    """Redis at `url` (keys start with `prefix`), or this process's memory when `url` is empty."""
    if not url:
        return MemoryState()
    from bot.shared_state.redis_backend import RedisState

    return RedisState(url, prefix)


def shared_state() -> SharedState:
    """This process's shared state, made on first use from the settings (made again when the
    settings changed, as in tests that set WALLET_REDIS_URL and call reload_settings())."""
    global _current
    current = settings()
    key = (current.shared_redis_url, current.redis_prefix)
    state = _current
    if state is not None and state[0] == key:
        return state[1]
    with _lock:
        if _current is None or _current[0] != key:
            made = open_state(*key)
            logger.info("Shared state (channel dedupe, offered buttons, rate limits, sign-in throttling, the "
                        "masker's digit memory): %s", made.describe()
                        + ("" if made.shared else " (WALLET_REDIS_URL is not set)"))
            _current = (key, made)
        return _current[1]
