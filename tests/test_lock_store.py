"""The one-round-trip Redis lock store (bot/serving/lock_store.py), against the real Redis:
one holder at a time across stores (= workers, instances), release, expiry, and a late holder
that cannot free someone else's lock."""
from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from bot.serving.lock_store import AsyncRedisLockStore

REDIS = {"url": "127.0.0.1", "port": 6379, "db": 1}


def redis_up() -> bool:
    try:
        return redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not redis_up(), reason="needs Redis at 127.0.0.1:6379")


def store(prefix: str) -> AsyncRedisLockStore:
    created = LockStore.create(EndpointConfig(type="bot.serving.lock_store.AsyncRedisLockStore",
                                              key_prefix=prefix, **REDIS))
    assert isinstance(created, AsyncRedisLockStore)
    return created


def test_one_holder_at_a_time_across_two_stores():
    prefix = f"t{uuid.uuid4().hex[:8]}"
    workers = [store(prefix), store(prefix)]
    inside, most, order = [0], [0], []

    async def message(i: int) -> None:
        async with workers[i % 2].lock("conv"):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            await asyncio.sleep(0.003)
            order.append(i)
            inside[0] -= 1

    async def main():
        await asyncio.gather(*(message(i) for i in range(30)), *(
            other() for other in [lambda: _other_conversation(workers[0])]))

    asyncio.run(main())
    assert most[0] == 1 and sorted(order) == list(range(30))
    assert redis.Redis(host="127.0.0.1", db=1).get(workers[0].key("conv")) is None  # released


async def _other_conversation(worker):
    async with worker.lock("another"):  # not held up by "conv"
        pass


def test_an_expired_holders_release_does_not_free_the_next_holder():
    worker = store(f"t{uuid.uuid4().hex[:8]}")
    keys = redis.Redis(host="127.0.0.1", db=1)

    async def main():
        nxt = worker.lock("c", lock_lifetime=5)
        async with worker.lock("c", lock_lifetime=0.05):
            await asyncio.sleep(0.12)  # expired meanwhile: the next message takes it
            await nxt.__aenter__()
        assert keys.get(worker.key("c")) is not None  # the late release left it alone

        async def waiting():
            async with worker.lock("c", lock_lifetime=0.05, wait_time_in_seconds=0.01):
                pass
        with pytest.raises(LockError):  # gives up after the lifetime while the lock is held
            await waiting()
        await nxt.__aexit__(None, None, None)
        assert keys.get(worker.key("c")) is None

    asyncio.run(main())


def test_unreachable_redis_is_a_lock_error():
    dead = LockStore.create(EndpointConfig(type="bot.serving.lock_store.AsyncRedisLockStore",
                                           url="127.0.0.1", port=1, db=1, socket_timeout=0.5))

    async def main():
        async with dead.lock("c"):
            pass

    with pytest.raises(LockError):
        asyncio.run(main())
