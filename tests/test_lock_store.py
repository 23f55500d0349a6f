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
                                           url="127.0.0.1", port=1, db=1, socket_timeout=0.5, redis_outage_wait=0))

    async def main():
        async with dead.lock("c"):
            pass

    with pytest.raises(LockError):
        asyncio.run(main())


def test_a_dead_holders_lock_frees_itself_within_the_lease():
    """A process that takes a lock and dies (os._exit: no release) stalls its conversation for
    the lease (LEASE_S, 10 s; 1 s here), not for Rasa's 60 s lifetime."""
    import subprocess
    import sys
    import time

    prefix = f"t{uuid.uuid4().hex[:8]}"
    holder = (
        "import asyncio, os, sys\n"
        "from rasa.core.lock_store import LockStore\n"
        "from rasa.utils.endpoints import EndpointConfig\n"
        "import bot.serving.lock_store as m; m.LEASE_S = 1.0\n"
        f"s = LockStore.create(EndpointConfig(type='bot.serving.lock_store.AsyncRedisLockStore', key_prefix='{prefix}',"
        " url='127.0.0.1', port=6379, db=1))\n"
        "async def main():\n"
        "    async with s.lock('c'):\n"
        "        print('held', flush=True)\n"
        "        os._exit(9)\n"
        "asyncio.run(main())\n")
    proc = subprocess.run([sys.executable, "-c", holder], capture_output=True, text=True, timeout=120)
    assert "held" in proc.stdout, proc.stderr[-2000:]
    died = time.monotonic()
    worker = store(prefix)

    async def main():
        async with worker.lock("c"):
            return time.monotonic() - died

    waited = asyncio.run(main())
    assert waited <= 1.5, waited


def test_a_live_holder_keeps_its_lock_past_the_lease(monkeypatch):
    import bot.serving.lock_store as lock_store

    monkeypatch.setattr(lock_store, "LEASE_S", 0.3)  # renewed every 0.1 s
    prefix = f"t{uuid.uuid4().hex[:8]}"
    a, b = store(prefix), store(prefix)
    order = []

    async def long_turn():
        async with a.lock("c"):
            order.append("a+")
            await asyncio.sleep(1.0)  # three leases long
            order.append("a-")

    async def next_turn():
        await asyncio.sleep(0.05)
        async with b.lock("c"):
            order.append("b")

    async def main():
        await asyncio.gather(long_turn(), next_turn())

    asyncio.run(main())
    assert order == ["a+", "a-", "b"]


def test_waiting_for_a_lock_lets_the_other_conversations_run(monkeypatch):
    """One turn slot: a turn waiting for a lock held elsewhere does not stop another
    conversation's turn (the stall of the kill test)."""
    import time

    import bot.serving.turn_gate as turn_gate
    from bot.serving.turn_gate import one_turn

    monkeypatch.setattr(turn_gate, "turn_slots", lambda: 1)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    elsewhere, here = store(prefix), store(prefix)
    times = {}

    async def main():
        held, release = asyncio.Event(), asyncio.Event()

        async def other_instance():
            async with elsewhere.lock("busy"):
                held.set()
                await release.wait()

        async def waiting_turn():
            async with one_turn():
                async with here.lock("busy"):
                    times["waiter"] = time.monotonic()

        async def other_turn():
            async with one_turn():
                async with here.lock("free"):
                    times["other"] = time.monotonic()
            release.set()

        holder = asyncio.ensure_future(other_instance())
        await held.wait()
        waiter = asyncio.ensure_future(waiting_turn())
        await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(other_turn(), waiter, holder), 10)

    asyncio.run(main())
    assert times["other"] < times["waiter"]


def test_a_redis_restart_delays_a_lock_instead_of_failing_it(tmp_path):
    """Redis goes away for a second (a restart): taking a lock waits for it to come back."""
    import threading

    from bot.devtools.services import PrivateRedis, redis_binary

    if redis_binary() is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        worker = LockStore.create(EndpointConfig(type="bot.serving.lock_store.AsyncRedisLockStore", url="127.0.0.1",
                                                 port=server.port, db=0, key_prefix="t", socket_timeout=1))

        async def take():
            async with worker.lock("c"):
                return True

        assert asyncio.run(take())
        server.stop()
        threading.Timer(1.0, server.start).start()
        assert asyncio.run(take())  # waited for the restart
    finally:
        server.stop()


def test_unreachable_redis_fails_after_the_outage_wait():
    import time

    dead = LockStore.create(EndpointConfig(type="bot.serving.lock_store.AsyncRedisLockStore",
                                           url="127.0.0.1", port=1, db=1, socket_timeout=0.5, redis_outage_wait=1))

    async def main():
        async with dead.lock("c"):
            pass

    started = time.monotonic()
    with pytest.raises(LockError):
        asyncio.run(main())
    assert 1 <= time.monotonic() - started < 5
