"""Token buckets per sender and per client address, so one user cannot starve others at a peak.

Messages: per conversation and per client address. New conversations (a widget's
`session_request`, `POST /webhooks/rest/session`): per client address, since every new
conversation would otherwise start with a fresh per-conversation budget. New hand-off tickets:
per client address and for everyone together per minute, so nobody can flood the agents' queue
(the channel says who is calling with `calling_from`; the hand-off action asks `check_new_ticket`).

In memory, per process: with several Rasa processes each enforces its own share (documented in
the README); a user's messages mostly reach one process (sticky socket.io, one bot webhook).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator, Optional, Tuple

from bot.security.clients import client_address, security_settings


class RateLimited(Exception):
    """Raised where a message is refused; channels answer politely (HTTP: 429)."""

    def __init__(self, text: str, retry_after: float) -> None:
        super().__init__(text)
        self.text = text
        self.retry_after = retry_after


class RateLimiter:
    """`allow(key)` spends one token of the key's bucket (refilled at `per_minute`)."""

    def __init__(self, per_minute: float, burst: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, int(burst))
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: "OrderedDict[str, Tuple[float, float]]" = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        return self.wait_time(key) == 0.0

    def wait_time(self, key: str) -> float:
        """0 when the message may pass (and a token is spent), else seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate if self.rate > 0 else 60.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait


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
    return RateLimiter(s.sender_per_minute, s.sender_burst)


@lru_cache(maxsize=1)
def client_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.client_per_minute, s.client_burst)


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


def check_sender(sender: str, text: str) -> None:
    """Raise RateLimited when this conversation sent too much."""
    if not rate_limit_settings().enabled:
        return
    wait = sender_limiter().wait_time(sender)
    if wait:
        raise RateLimited(text, wait)


@lru_cache(maxsize=1)
def session_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.sessions_per_minute, s.sessions_burst)


@lru_cache(maxsize=1)
def ticket_client_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.tickets_client_per_minute, s.tickets_client_burst)


@lru_cache(maxsize=1)
def ticket_overall_limiter() -> RateLimiter:
    s = rate_limit_settings()
    return RateLimiter(s.tickets_all_per_minute, s.tickets_all_burst)


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
