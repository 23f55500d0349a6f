"""Token buckets per sender and per client address, so one user cannot starve others at a peak.

In memory, per process: with several Rasa processes each enforces its own share (documented in
the README); a user's messages mostly reach one process (sticky socket.io, one bot webhook).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Tuple

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
    enabled: bool = True


@lru_cache(maxsize=1)
def rate_limit_settings() -> RateLimitSettings:
    raw = security_settings().get("rate_limit") or {}
    sender, client = raw.get("per_sender") or {}, raw.get("per_client") or {}
    base = RateLimitSettings()
    return RateLimitSettings(
        sender_per_minute=float(sender.get("per_minute", base.sender_per_minute)),
        sender_burst=int(sender.get("burst", base.sender_burst)),
        client_per_minute=float(client.get("per_minute", base.client_per_minute)),
        client_burst=int(client.get("burst", base.client_burst)),
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


