"""The shared state in Redis: what every worker and instance must see alike.

Each `run` sends its operations in one pipeline: one round trip, whatever the batch holds. The
token bucket and the sign-in throttle are Lua scripts (EVALSHA), so a check and its update are
one atomic step across all processes; dedupe is `SET NX PX`; values are `SET PX`/`GET`/`DEL`.
Times come from this process's wall clock (`time.time`): hosts of one deployment keep NTP time.

The client is redis-py's synchronous one, called from the event loop: a round trip on the
same host or LAN is a fraction of a millisecond, and the sockets time out after
`SOCKET_TIMEOUT` so a hung Redis cannot stall the server. A connection that Redis closed
(Redis restarted) is reconnected once at once; a timeout is not retried (the command may
have run).

When Redis cannot be used (refused, timed out, out of memory, …) the batch runs on this process's
memory (`MemoryState`) instead and one warning says so; Redis is tried again every
`RETRY_SECONDS`, and one line says when it is back. Nothing raises to the caller: a message is
never lost because Redis is away, but while it is away dedupe, limits and offered buttons hold
per process.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from typing import Any, Callable, List, Optional, Sequence, Tuple
from urllib.parse import urlparse, urlunparse

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from bot.shared_state.memory import MemoryState
from bot.shared_state.ops import (EndLease, FirstTime, Forget, Get, Lease, Op, Put, TakeToken, ThrottleAttempt,
                                  ThrottleCheck, ThrottleFail, ThrottleForgive)

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT = 0.5
CONNECT_TIMEOUT = 0.3
RETRY_SECONDS = 2.0
"""While Redis is away, how often one message tries it again (the others use memory meanwhile)."""

TOKEN_BUCKET = """
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'l')
local tokens, last = tonumber(state[1]), tonumber(state[2])
if tokens == nil or last == nil then tokens, last = burst, now end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate)
  last = now
end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 elseif rate > 0 then wait = (1 - tokens) / rate else wait = 60 end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'l', tostring(last))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return tostring(wait)
"""

THROTTLE = """
local mode, now, window, most = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local wait = 0
if mode ~= 'fail' then
  for _, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. tostring(now - window))
    if redis.call('ZCARD', key) >= most then
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      local w = window - (now - tonumber(oldest[2]))
      if w > wait then wait = w end
    end
  end
end
if mode == 'check' or wait > 0 then return tostring(wait) end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[5])
  redis.call('PEXPIRE', key, ARGV[6])
end
return '0'
"""
END_LEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
SCRIPTS = {"bucket": TOKEN_BUCKET, "throttle": THROTTLE, "end_lease": END_LEASE}
SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000 + 0.999))


def safe_url(url: str) -> str:
    """The URL for logs: a password is replaced by ***."""
    parts = urlparse(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunparse(parts._replace(netloc=netloc))
    return url


class RedisState:
    shared = True
    """Every process using the same Redis URL and prefix sees it."""

    def __init__(self, url: str, prefix: str = "wallet:", clock: Callable[[], float] = time.time,
                 fallback: Optional[MemoryState] = None, socket_timeout: float = SOCKET_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT, retry_seconds: float = RETRY_SECONDS) -> None:
        self.url, self.prefix, self.clock, self.retry_seconds = url, prefix, clock, retry_seconds
        self.client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout, decode_responses=True,
            retry=Retry(NoBackoff(), 1), retry_on_error=[redis.ConnectionError])
        self.fallback = fallback if fallback is not None else MemoryState()
        self.down_since: Optional[float] = None
        self._next_try = 0.0
        self._lock = threading.Lock()
        self.round_trips = 0
        """Pipelines sent (tests and benchmarks read it)."""

    def describe(self) -> str:
        return f"Redis at {safe_url(self.url)} (keys {self.prefix}…)"

    def run(self, *ops: Op) -> List[Any]:
        if not ops:
            return []
        if self.down_since is not None and time.monotonic() < self._next_try:
            return self.fallback.run(*ops)
        try:
            results = self._run(ops)
        except redis.RedisError as exc:
            self._went_down(exc)
            return self.fallback.run(*ops)
        if self.down_since is not None:
            self._came_back()
        return results

    # -- outage bookkeeping ------------------------------------------------------------------------
    def _went_down(self, exc: Exception) -> None:
        with self._lock:
            self._next_try = time.monotonic() + self.retry_seconds
            if self.down_since is not None:
                return
            self.down_since = time.monotonic()
        logger.warning(
            "Shared state: %s cannot be used (%s: %s). Falling back to this process's memory until it "
            "returns: channel dedupe, offered buttons, rate limits and sign-in throttling now hold per "
            "process; messages are still answered. Retrying every %.0f s.",
            self.describe(), type(exc).__name__, exc, self.retry_seconds)

    def _came_back(self) -> None:
        with self._lock:
            since, self.down_since = self.down_since, None
        if since is not None:
            logger.warning("Shared state: %s is back after %.1f s; dedupe, buttons, limits and throttling are "
                           "shared again.", self.describe(), time.monotonic() - since)

    # -- one round trip ----------------------------------------------------------------------------
    def _run(self, ops: Sequence[Op]) -> List[Any]:
        now = self.clock()
        stamps = [uuid.uuid4().hex[:16] if isinstance(op, (ThrottleAttempt, ThrottleFail)) else "" for op in ops]
        raw = self._pipeline([self._commands(op, now, stamp) for op, stamp in zip(ops, stamps)])
        again = [i for i, replies in enumerate(raw) if any(isinstance(r, NoScriptError) for r in replies)]
        if again:  # Redis restarted (or was flushed): load the scripts, run only those operations
            for text in SCRIPTS.values():
                self.client.script_load(text)
            redone = self._pipeline([self._commands(ops[i], now, stamps[i]) for i in again])
            for i, replies in zip(again, redone):
                raw[i] = replies
        for replies in raw:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return [self._result(op, replies, stamp) for op, replies, stamp in zip(ops, raw, stamps)]

    def _pipeline(self, batches: List[List[Tuple[Any, ...]]]) -> List[List[Any]]:
        pipe = self.client.pipeline(transaction=False)
        for commands in batches:
            for command in commands:
                pipe.execute_command(*command)
        flat = pipe.execute(raise_on_error=False)
        self.round_trips += 1
        out, at = [], 0
        for commands in batches:
            out.append(flat[at:at + len(commands)])
            at += len(commands)
        return out

    def _commands(self, op: Op, now: float, stamp: str) -> List[Tuple[Any, ...]]:
        p = self.prefix
        if isinstance(op, FirstTime):
            return [("SET", p + op.key, "1", "PX", _ms(op.ttl), "NX")]
        if isinstance(op, Get):
            return [("GET", p + op.key)]
        if isinstance(op, Put):
            return [("SET", p + op.key, op.value, "PX", _ms(op.ttl))]
        if isinstance(op, Forget):
            return [("DEL", p + op.key)]
        if isinstance(op, TakeToken):
            burst = max(1, int(op.burst))
            refill = burst / op.per_second if op.per_second > 0 else 3600.0
            return [("EVALSHA", SHAS["bucket"], 1, p + op.key, repr(now), repr(float(op.per_second)), burst,
                     _ms(refill + 1))]
        if isinstance(op, (ThrottleAttempt, ThrottleCheck, ThrottleFail)):
            mode = {ThrottleAttempt: "attempt", ThrottleCheck: "check", ThrottleFail: "fail"}[type(op)]
            keys = [p + k for k in op.keys]
            return [("EVALSHA", SHAS["throttle"], len(keys), *keys, mode, repr(now), repr(float(op.window)),
                     getattr(op, "max_failures", 0), stamp, _ms(op.window + 1))]
        if isinstance(op, Lease):
            return [("SET", op.key, op.owner, "PX", _ms(op.ttl), "NX")]
        if isinstance(op, EndLease):
            return [("EVALSHA", SHAS["end_lease"], 1, op.key, op.owner)]
        if isinstance(op, ThrottleForgive):
            commands: List[Tuple[Any, ...]] = [("DEL", p + op.name_key)]
            if op.stamp:
                commands += [("ZREM", p + k, op.stamp) for k in op.other_keys]
            return commands
        raise TypeError(f"not a shared-state operation: {op!r}")

    @staticmethod
    def _result(op: Op, replies: List[Any], stamp: str) -> Any:
        reply = replies[0] if replies else None
        if isinstance(op, (FirstTime, Lease)):
            return bool(reply)
        if isinstance(op, Get):
            return reply
        if isinstance(op, (TakeToken, ThrottleCheck)):
            return float(reply)
        if isinstance(op, ThrottleAttempt):
            wait = float(reply)
            return (wait, None) if wait > 0 else (0.0, stamp)
        return None
