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
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional
from urllib.parse import urlparse

import redis.asyncio as aioredis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
FIRST_RETRY_S, LONGEST_RETRY_S = 0.002, 0.05


class AsyncRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        settings: Dict[str, Any] = {**(endpoint_config.kwargs if endpoint_config else {}), **kwargs}
        host = (endpoint_config.url if endpoint_config else None) or settings.pop("host", "localhost")
        settings.pop("type", None)
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

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        client, key, token = self._client(), self.key(conversation_id), uuid.uuid4().hex
        give_up = time.monotonic() + lock_lifetime
        retry = FIRST_RETRY_S
        try:
            while not await client.set(key, token, nx=True, px=max(1, int(lock_lifetime * 1000))):
                if time.monotonic() > give_up:
                    raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
                await asyncio.sleep(retry)
                retry = min(retry * 2, LONGEST_RETRY_S, wait_time_in_seconds)
        except aioredis.RedisError as err:
            raise LockError(f"Error while acquiring lock. Error:\n{err}") from err
        try:
            yield TicketLock(conversation_id)
        finally:
            try:
                await client.eval(_RELEASE, 1, key, token)
            except aioredis.RedisError:  # the lock expires by itself after its lifetime
                logger.warning("could not release the lock of %s; it expires in %.0f s", conversation_id, lock_lifetime)


def redis_lock_store_yaml(redis_url: str, key_prefix: str) -> str:
    """The `lock_store:` block of endpoints.yml for this store (workers, bench, scale-out)."""
    rd = urlparse(redis_url)
    return ("lock_store:\n  type: bot.serving.lock_store.AsyncRedisLockStore\n"
            f"  url: {rd.hostname or '127.0.0.1'}\n  port: {rd.port or 6379}\n"
            f"  db: {int((rd.path or '/1').lstrip('/') or 1)}\n  key_prefix: {key_prefix}\n")
