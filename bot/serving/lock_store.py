"""A Redis lock store that takes a conversation's lock in one non-blocking round trip.

Rasa's `RedisLockStore` keeps a JSON "ticket lock" per conversation and reads and rewrites it
with the synchronous redis client: seven round trips per message (issue a ticket, check it,
finish serving, check for waiters, delete), each one stopping the server's event loop, plus a
read-modify-write between workers that is not atomic. In our profile of two Sanic workers that
was a seventh of each worker's time. Here the lock is one `SET key token NX PX lifetime` with
the asyncio client (released by a compare-and-delete script), so the loop serves other users
while Redis answers. A lock whose holder died expires after its lifetime, as Rasa's do.

Messages of one conversation are still handled one at a time on every worker and instance.
Unlike Rasa's tickets, two messages of the same conversation that wait at the same moment are
not guaranteed to go in arrival order (users wait for an answer before the next message, so
this does not arise from our channels). Do not mix it with `type: redis` in one deployment:
the keys differ. Configure in endpoints.yml:

  lock_store: {type: bot.serving.lock_store.AsyncRedisLockStore, url: 127.0.0.1, port: 6379, db: 1, key_prefix: wallet}

A holder that dies (kill -9, a lost host) must not stall its conversation for Rasa's whole lock
lifetime (60 s: in a kill test under 50 users the request nginx moved to the other instance
waited a minute, the client timed out and sent it again, and the message was answered twice).
So the lock is a lease of `LEASE_S` seconds that its holder renews every third of it while the
turn runs (a compare-and-renew script; no round trip for a turn shorter than that), up to the
lifetime Rasa asked for: a dead holder's lock frees itself within `LEASE_S`. A process whose
event loop stands still longer than `LEASE_S` would lose its leases early (nothing of ours
does: loading a pulled model stops the loop for about a second here).

A message's lock can also be taken ahead, in the same pipeline as the shared state's checks
(`claim_lock` below; bot/channels/handoff_flow.py): the channel adds a `Lease` of the lock's key
to the rate limit and the masker's memory, and `lock()` adopts it instead of a `SET NX` of its
own. A normal FAQ turn then costs Redis two round trips in all (the checks with the lock, and
the release) instead of three. Only when the lock store and the shared state use the same Redis
server and database; otherwise each takes its own round trip, as before.

When Redis does not answer (a restart), taking a lock keeps trying for `REDIS_OUTAGE_S`
(endpoints.yml `redis_outage_wait`) before it is a LockError: a restart of Redis delays messages
instead of failing them.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, Iterator, Optional
from urllib.parse import urlparse

import redis.asyncio as aioredis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bot.serving.turn_gate import slot_given_up
from bot.shared_state import EndLease, Lease, SharedState, shared_state

logger = logging.getLogger(__name__)

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
FIRST_RETRY_S, LONGEST_RETRY_S = 0.002, 0.05
LEASE_S = 10.0
"""How long a dead holder's lock outlives it."""
REDIS_OUTAGE_S = 10.0
"""How long taking a lock waits for Redis to come back (a restart) before it fails."""


@dataclass
class LockClaim:
    """A conversation's lock taken ahead for the turn about to run (see the module's docstring)."""

    conversation_id: str
    key: str
    token: str
    op: Lease
    taken: Optional[bool] = None
    """True: ours; False: another turn holds it; None: not decided (Redis was away)."""
    at: float = 0.0
    adopted: bool = False

    def settle(self, taken: Optional[bool]) -> None:
        """Record the Lease's result, when it came back."""
        self.taken, self.at = taken, time.monotonic()


_claim: ContextVar[Optional[LockClaim]] = ContextVar("wallet_lock_claim", default=None)


class AsyncRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        settings: Dict[str, Any] = {**(endpoint_config.kwargs if endpoint_config else {}), **kwargs}
        host = (endpoint_config.url if endpoint_config else None) or settings.pop("host", "localhost")
        settings.pop("type", None)
        self.outage_wait = float(settings.pop("redis_outage_wait", REDIS_OUTAGE_S))
        super().__init__(host=host, **settings)  # Rasa's checks of the settings, and its key prefix
        self._connection = self.red.connection_pool.connection_kwargs
        self._clients: Dict[int, aioredis.Redis] = {}

    def _client(self) -> aioredis.Redis:
        """One asyncio client per event loop (its connections belong to that loop)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(id(loop))
        if client is None:
            self._clients = {k: c for k, c in self._clients.items() if k == id(loop)}
            c = self._connection
            client = self._clients[id(loop)] = aioredis.Redis(
                host=c.get("host", "localhost"), port=c.get("port", 6379), db=c.get("db", 0),
                username=c.get("username"), password=c.get("password"),
                socket_timeout=c.get("socket_timeout"))
        return client

    def key(self, conversation_id: str) -> str:
        return f"{self.key_prefix}mutex:{conversation_id}"

    def shares_redis_with(self, state: SharedState) -> bool:
        """Whether `state` keeps its keys in the same Redis server and database as the locks, so
        one pipeline can carry both."""
        client = getattr(state, "client", None)
        if not state.shared or client is None:
            return False
        theirs, ours = client.connection_pool.connection_kwargs, self._connection

        def where(c: Dict[str, Any]) -> tuple:
            host = c.get("host") or "localhost"
            return ("127.0.0.1" if host == "localhost" else host, int(c.get("port") or 6379), int(c.get("db") or 0),
                    c.get("username"), c.get("password"), c.get("path"))

        return where(theirs) == where(ours)

    def _adopt(self, conversation_id: str, key: str) -> Optional[LockClaim]:
        claim = _claim.get()
        if claim is None or claim.adopted or claim.conversation_id != conversation_id or claim.key != key:
            return None
        claim.adopted = True
        return claim

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        client, key = self._client(), self.key(conversation_id)
        claim = self._adopt(conversation_id, key)
        token = claim.token if claim is not None else uuid.uuid4().hex
        started = time.monotonic()
        give_up, ends = started + lock_lifetime, started + lock_lifetime
        lease = min(LEASE_S, lock_lifetime)
        # renews only once the lock is ours (compare-and-renew), also while the turn queues for
        # the gate again after waiting for the lock
        renewer = asyncio.ensure_future(self._renew(client, key, token, lease, ends)) if lock_lifetime > lease else None
        try:
            if not (claim is not None and await self._still_ours(client, claim, lease)):
                await self._acquire(client, key, token, lease, give_up, wait_time_in_seconds, conversation_id)
        except BaseException:
            if renewer is not None:
                renewer.cancel()
            raise
        try:
            yield TicketLock(conversation_id)
        finally:
            if renewer is not None:
                renewer.cancel()
            try:
                await client.eval(_RELEASE, 1, key, token)
            except aioredis.RedisError:  # the lock expires by itself after its lease
                logger.warning("could not release the lock of %s; it expires in %.0f s", conversation_id, lease)

    @staticmethod
    async def _still_ours(client: aioredis.Redis, claim: LockClaim, lease: float) -> bool:
        """Whether a claimed lock is ours: at once when it was taken moments ago; after a wait of a
        third of the lease, or when Redis's answer was lost, ask Redis (compare-and-renew)."""
        if claim.taken is False:
            return False
        if claim.taken and time.monotonic() - claim.at < LEASE_S / 3:
            return True
        try:
            return bool(await client.eval(_RENEW, 1, claim.key, claim.token, max(1, int(lease * 1000))))
        except aioredis.RedisError:
            return False

    async def _acquire(self, client: aioredis.Redis, key: str, token: str, lease: float, give_up: float,
                       wait_time_in_seconds: float, conversation_id: str) -> None:
        if await self._try(client, key, token, lease, conversation_id):
            return
        async with slot_given_up():  # waiting: the turn gate's slot goes to a turn that can run
            retry = FIRST_RETRY_S
            while True:
                if time.monotonic() > give_up:
                    raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
                await asyncio.sleep(retry)
                retry = min(retry * 2, LONGEST_RETRY_S, wait_time_in_seconds)
                if await self._try(client, key, token, lease, conversation_id):
                    return

    async def _try(self, client: aioredis.Redis, key: str, token: str, lease: float, conversation_id: str) -> bool:
        """One SET NX; while Redis does not answer, retried for up to `outage_wait` seconds."""
        outage_since = None
        while True:
            try:
                taken = bool(await client.set(key, token, nx=True, px=max(1, int(lease * 1000))))
            except (aioredis.ConnectionError, aioredis.TimeoutError) as err:
                now = time.monotonic()
                if outage_since is None:
                    outage_since = now
                    logger.warning("Redis unreachable taking the lock of %s (%s); retrying for up to %.0f s",
                                   conversation_id, err, self.outage_wait)
                if now - outage_since > self.outage_wait:
                    raise LockError(f"Error while acquiring lock. Error:\n{err}") from err
                async with slot_given_up():
                    await asyncio.sleep(0.2)
                continue
            except aioredis.RedisError as err:
                raise LockError(f"Error while acquiring lock. Error:\n{err}") from err
            if outage_since is not None:
                logger.warning("Redis answers again (lock of %s after %.1f s)", conversation_id,
                               time.monotonic() - outage_since)
            return taken

    @staticmethod
    async def _renew(client: aioredis.Redis, key: str, token: str, lease: float, ends: float) -> None:
        """Extend the lease every third of it while the turn runs, never past `ends`."""
        while True:
            await asyncio.sleep(lease / 3)
            left = ends - time.monotonic()
            if left <= 0:
                return
            try:
                await client.eval(_RENEW, 1, key, token, max(1, int(min(lease, left) * 1000)))
            except aioredis.RedisError as err:
                logger.warning("could not renew the lock %s: %s", key, err)


def claim_lock(lock_store: Any, conversation_id: str) -> Optional[LockClaim]:
    """A claim on the conversation's lock whose `op` the caller sends with its shared-state batch
    (then `holding_claim`), or None when the lock store cannot share that round trip."""
    if not isinstance(lock_store, AsyncRedisLockStore) or not lock_store.shares_redis_with(shared_state()):
        return None
    key, token = lock_store.key(conversation_id), uuid.uuid4().hex
    return LockClaim(conversation_id, key, token, Lease(key, token, LEASE_S))


@contextmanager
def holding_claim(claim: Optional[LockClaim]) -> Iterator[Optional[LockClaim]]:
    """Within this block the lock store's `lock()` for the claim's conversation adopts the claim
    (once its batch ran: `claim.settle(result)`). A claim that may be taken but was never adopted
    (a rate-limited message, a turn that ended before it locked) is given back at the end."""
    if claim is None:
        yield None
        return
    reset = _claim.set(claim)
    try:
        yield claim
    finally:
        _claim.reset(reset)
        if claim.taken is not False and not claim.adopted:
            shared_state().run(EndLease(claim.key, claim.token))


def redis_lock_store_yaml(redis_url: str, key_prefix: str) -> str:
    """The `lock_store:` block of endpoints.yml for this store (workers, bench, scale-out)."""
    rd = urlparse(redis_url)
    return ("lock_store:\n  type: bot.serving.lock_store.AsyncRedisLockStore\n"
            f"  url: {rd.hostname or '127.0.0.1'}\n  port: {rd.port or 6379}\n"
            f"  db: {int((rd.path or '/1').lstrip('/') or 1)}\n  key_prefix: {key_prefix}\n")
