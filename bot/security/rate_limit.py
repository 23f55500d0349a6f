"""Token buckets per sender and per client address, so one user cannot starve others at a peak.

Messages: per conversation and per client address. New conversations (a widget's
`session_request`, `POST /webhooks/rest/session`): per client address, since every new
conversation would otherwise start with a fresh per-conversation budget. New hand-off tickets:
per client address and for everyone together per minute, so nobody can flood the agents' queue
(the channel says who is calling with `calling_from`; the hand-off action asks `check_new_ticket`).

The buckets are in the shared state (bot/shared_state): Redis when WALLET_REDIS_URL is set, so
every worker and instance spends from the same bucket (one atomic script per check), else this
process's memory. While Redis is away each process keeps limiting on its own.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from bot.security.clients import client_address, security_settings
from bot.shared_state import MemoryState, Op, SharedState, TakeToken, shared_state
from bot.shared_state.memory import MAX_KEYS


class RateLimited(Exception):
    """Raised where a message is refused; channels answer politely (HTTP: 429)."""

    def __init__(self, text: str, retry_after: float) -> None:
        super().__init__(text)
        self.text = text
        self.retry_after = retry_after


class RateLimiter:
    """`allow(key)` spends one token of the key's bucket (refilled at `per_minute`).

    `shared`: the buckets live in the process's shared state (bot/shared_state, the limits below);
    otherwise the limiter keeps them to itself, in memory, with `clock` and `max_keys` (tests,
    tools). `name` keeps the buckets of different limits apart in one state."""

    def __init__(self, per_minute: float, burst: int, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic, name: str = "limit", shared: bool = False) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, int(burst))
        self.name = name
        self._own: Optional[SharedState] = None if shared else MemoryState(max_keys=max_keys, clock=clock)

    @property
    def state(self) -> SharedState:
        return self._own if self._own is not None else shared_state()

    def op(self, key: str) -> TakeToken:
        """The operation that spends a token of `key` (to send with others in one round trip)."""
        return TakeToken(f"rate:{self.name}:{key}", self.rate, self.burst)

    def allow(self, key: str) -> bool:
        return self.wait_time(key) == 0.0

    def wait_time(self, key: str) -> float:
        """0 when the message may pass (and a token is spent), else seconds until it may."""
        return self.state.run(self.op(key))[0]


@dataclass(frozen=True)
class RateLimitSettings:
    sender_per_minute: float = 30.0
    sender_burst: int = 10
    client_per_minute: float = 300.0
    client_burst: int = 60
    # new conversations per client address (widget session_request, REST /session)
    sessions_per_minute: float = 30.0
    sessions_burst: int = 20
    # new hand-off tickets per client address, and for everyone together
    tickets_client_per_minute: float = 6.0
    tickets_client_burst: int = 3
    tickets_all_per_minute: float = 120.0
    tickets_all_burst: int = 60
    enabled: bool = True


def _bucket(raw: dict, key: str, per_minute: float, burst: int) -> Tuple[float, int]:
    section = raw.get(key) or {}
    return float(section.get("per_minute", per_minute)), int(section.get("burst", burst))


@lru_cache(maxsize=1)
def rate_limit_settings() -> RateLimitSettings:
    """`security.rate_limit` of assistant.yml (docs/configuration.md), defaults above."""
    raw = security_settings().get("rate_limit") or {}
    base = RateLimitSettings()
    sender = _bucket(raw, "per_sender", base.sender_per_minute, base.sender_burst)
    client = _bucket(raw, "per_client", base.client_per_minute, base.client_burst)
    sessions = _bucket(raw, "new_sessions_per_client", base.sessions_per_minute, base.sessions_burst)
    tickets_client = _bucket(raw, "new_tickets_per_client", base.tickets_client_per_minute, base.tickets_client_burst)
    tickets_all = _bucket(raw, "new_tickets_overall", base.tickets_all_per_minute, base.tickets_all_burst)
    return RateLimitSettings(
        sender_per_minute=sender[0], sender_burst=sender[1],
        client_per_minute=client[0], client_burst=client[1],
        sessions_per_minute=sessions[0], sessions_burst=sessions[1],
        tickets_client_per_minute=tickets_client[0], tickets_client_burst=tickets_client[1],
        tickets_all_per_minute=tickets_all[0], tickets_all_burst=tickets_all[1],
        enabled=bool(raw.get("enabled", True)),
    )


@lru_cache(maxsize=1)
def sender_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.sender_per_minute, s.sender_burst, name="sender", shared=True)


@lru_cache(maxsize=1)
def client_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.client_per_minute, s.client_burst, name="client", shared=True)


def check_client(peer: Optional[str], forwarded_for: Optional[str], text: str) -> None:
    """Raise RateLimited when this client address sent too much."""
    settings = rate_limit_settings()
    if not settings.enabled:
        return
    address = client_address(peer, forwarded_for)
    if address is None:  # a local tool or back end, not a user
        return
    wait = client_limiter().wait_time(address)
    if wait:
        raise RateLimited(text, wait)


def check_sender(sender: str, text: str, also: Sequence[Op] = (), address: Optional[str] = None) -> List[Any]:
    """Raise RateLimited when this conversation, or the client `address` it came from (None: a
    back end or platform, not counted), sent too much.

    `also`: more operations on the shared state that this message needs (the masker's memory of
    the previous message's digits, the conversation's lock), sent in the same round trip as the
    checks; their results are returned in order (also when the limits are off)."""
    limits = [] if not rate_limit_settings().enabled else (
        [(client_limiter(), address)] if address is not None else []) + [(sender_limiter(), sender)]
    state = shared_state()
    if any(limiter.state is not state for limiter, _ in limits):  # a limiter of its own (tests)
        waits = [limiter.wait_time(key) for limiter, key in limits]
        results = state.run(*also) if also else []
    else:
        waits, results = [], state.run(*(limiter.op(key) for limiter, key in limits), *also)
        waits, results = results[:len(limits)], results[len(limits):]
    wait = max(waits, default=0.0)
    if wait:
        raise RateLimited(text, wait)
    return results


@lru_cache(maxsize=1)
def session_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.sessions_per_minute, s.sessions_burst, name="sessions", shared=True)


@lru_cache(maxsize=1)
def ticket_client_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.tickets_client_per_minute, s.tickets_client_burst, name="tickets_client", shared=True)


@lru_cache(maxsize=1)
def ticket_overall_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.tickets_all_per_minute, s.tickets_all_burst, name="tickets_all", shared=True)


def check_new_session(address: Optional[str], text: str) -> None:
    """Raise RateLimited when this address opened too many conversations. `address` None: a
    trusted back end (it opens conversations for all of its users), not limited here."""
    if not rate_limit_settings().enabled or address is None:
        return
    wait = session_limiter().wait_time(address)
    if wait:
        raise RateLimited(text, wait)


@dataclass(frozen=True)
class Caller:
    """Who sent the message being handled, as the ticket limits see it.

    `address`: the client address to count (None: a trusted back end speaking for many users,
    or a platform such as Telegram or WeChat whose users the platform identifies: only the
    overall limit applies). `limited` False: an in-process tool (the simulated day), no limit."""

    address: Optional[str] = None
    limited: bool = True


UNKNOWN_CALLER = Caller()
"""An address we do not know (a platform's webhook, a caller that did not say): overall limit only."""
UNLIMITED = Caller(limited=False)
_caller: "ContextVar[Optional[Caller]]" = ContextVar("wallet_caller", default=None)


@contextmanager
def calling_from(caller: Caller) -> Iterator[None]:
    """While one user message is handled (the in-process actions run inside it)."""
    token = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(token)


def check_new_ticket(text: str) -> None:
    """Raise RateLimited when a new hand-off ticket may not be opened now: the caller's address
    opened too many, or everybody together did. Asked only when a ticket would be created
    (reusing the conversation's open ticket is free). Outside a channel's message (no caller:
    Rasa's HTTP API with our admin JWT, the action server in another process) nothing is
    limited here."""
    caller = _caller.get()
    if caller is None or not caller.limited or not rate_limit_settings().enabled:
        return
    if caller.address is not None:  # first, so one flooder's refused tries spend nobody else's budget
        wait = ticket_client_limiter().wait_time(caller.address)
        if wait:
            raise RateLimited(text, wait)
    wait = ticket_overall_limiter().wait_time("all")
    if wait:
        raise RateLimited(text, wait)
