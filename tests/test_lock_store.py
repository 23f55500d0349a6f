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


# -- the lock taken ahead, in the shared state's round trip --------------------------------------------

@pytest.fixture
def shared_on_lock_redis(monkeypatch):
    """The shared state on the lock store's Redis server and database (as every launcher sets it)."""
    from bot.config import reload_settings

    monkeypatch.setenv("WALLET_REDIS_URL", "redis://127.0.0.1:6379/1")
    monkeypatch.setenv("WALLET_REDIS_PREFIX", f"claim{uuid.uuid4().hex[:6]}:")
    reload_settings()
    yield
    monkeypatch.delenv("WALLET_REDIS_URL")
    reload_settings()


def _sets(client: redis.Redis) -> int:
    return client.info("commandstats").get("cmdstat_set", {}).get("calls", 0)


def test_a_claimed_lock_is_adopted_without_a_round_trip_of_its_own(shared_on_lock_redis):
    from bot.serving.lock_store import claim_lock, holding_claim
    from bot.shared_state import shared_state

    prefix = f"t{uuid.uuid4().hex[:8]}"
    lock_store, other = store(prefix), store(prefix)  # two processes
    watch = redis.Redis(host="127.0.0.1", db=1)
    seen = {}

    async def turn():
        with holding_claim(claim_lock(lock_store, "conv")) as claim:
            assert claim is not None
            taken, = shared_state().run(claim.op)
            claim.settle(taken)
            assert taken is True and watch.get(lock_store.key("conv")).decode() == claim.token
            sets = _sets(watch)
            async with lock_store.lock("conv"):
                seen["sets inside"] = _sets(watch) - sets
                # another process cannot take it meanwhile
                try:
                    async with other.lock("conv", lock_lifetime=0.2, wait_time_in_seconds=0.01):
                        seen["other"] = "took it"
                except LockError:
                    seen["other"] = "refused"
            seen["after"] = watch.get(lock_store.key("conv"))

    asyncio.run(turn())
    assert seen == {"sets inside": 0, "other": "refused", "after": None}


def test_a_claim_never_adopted_is_given_back(shared_on_lock_redis):
    from bot.serving.lock_store import claim_lock, holding_claim
    from bot.shared_state import shared_state

    lock_store = store(f"t{uuid.uuid4().hex[:8]}")
    watch = redis.Redis(host="127.0.0.1", db=1)

    class RateLimitedHere(Exception):
        pass

    with pytest.raises(RateLimitedHere):
        with holding_claim(claim_lock(lock_store, "limited")) as claim:
            shared_state().run(claim.op)  # sent, but the message is refused before its result is read
            assert watch.get(lock_store.key("limited")) is not None
            raise RateLimitedHere()
    assert watch.get(lock_store.key("limited")) is None


def test_a_claim_held_by_another_turn_waits_for_it(shared_on_lock_redis):
    from bot.serving.lock_store import claim_lock, holding_claim
    from bot.shared_state import shared_state

    lock_store = store(f"t{uuid.uuid4().hex[:8]}")
    order = []

    async def first():
        async with lock_store.lock("busy"):
            order.append("first in")
            await asyncio.sleep(0.2)
            order.append("first out")

    async def second():
        await asyncio.sleep(0.05)
        with holding_claim(claim_lock(lock_store, "busy")) as claim:
            taken, = shared_state().run(claim.op)
            claim.settle(taken)
            assert taken is False
            async with lock_store.lock("busy"):
                order.append("second in")

    async def main():
        await asyncio.gather(first(), second())

    asyncio.run(main())
    assert order == ["first in", "first out", "second in"]


def test_no_claim_when_the_shared_state_is_memory_or_another_database(monkeypatch):
    from bot.config import reload_settings
    from bot.serving.lock_store import claim_lock

    lock_store = store(f"t{uuid.uuid4().hex[:8]}")
    monkeypatch.delenv("WALLET_REDIS_URL", raising=False)
    reload_settings()
    assert claim_lock(lock_store, "c") is None
    monkeypatch.setenv("WALLET_REDIS_URL", "redis://127.0.0.1:6379/3")
    reload_settings()
    assert claim_lock(lock_store, "c") is None
    monkeypatch.setenv("WALLET_REDIS_URL", "redis://localhost:6379/1")
    reload_settings()
    assert claim_lock(lock_store, "c") is not None
    monkeypatch.delenv("WALLET_REDIS_URL")
    reload_settings()


def test_a_claim_whose_answer_was_lost_is_checked_with_redis(shared_on_lock_redis):
    """Redis ran the Lease but the batch fell back to memory (result None): the lock store asks
    Redis whether the lock is ours instead of waiting for its own lease to expire."""
    from bot.serving.lock_store import claim_lock, holding_claim
    from bot.shared_state import shared_state

    lock_store = store(f"t{uuid.uuid4().hex[:8]}")

    async def turn():
        with holding_claim(claim_lock(lock_store, "lost")) as claim:
            shared_state().run(claim.op)
            claim.settle(None)
            started = asyncio.get_running_loop().time()
            async with lock_store.lock("lost"):
                return asyncio.get_running_loop().time() - started

    assert asyncio.run(turn()) < 1.0
