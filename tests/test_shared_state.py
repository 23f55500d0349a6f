"""The shared runtime state (bot/shared_state): the same tests on both backends — this process's
memory and the real Redis at 127.0.0.1:6379 (db 1, a fresh key prefix per test, removed
afterwards) — then what only Redis does: two clients (= two processes) see one state, and an
unreachable or restarted Redis costs no message and is said once."""
from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import redis

from bot.security.login_throttle import LoginThrottle
from bot.security.rate_limit import RateLimiter
from bot.shared_state import (FirstTime, Forget, Get, MemoryState, Put, TakeToken, ThrottleAttempt, open_state,
                              shared_state)
from bot.shared_state.redis_backend import RedisState, safe_url
from tests.servers import free_port

REDIS_URL = "redis://127.0.0.1:6379/1"


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not redis_up(), reason="needs Redis at 127.0.0.1:6379")


class Clock:
    """A clock the test moves; `later` also lets real time pass for what Redis expires itself."""

    def __init__(self, real: bool) -> None:
        self.now, self.real = 1_800_000_000.0, real

    def __call__(self) -> float:
        return self.now

    def later(self, seconds: float) -> None:
        self.now += seconds
        if self.real:
            time.sleep(seconds)


def drop_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def prefix():
    name = f"test-shared-{uuid.uuid4().hex[:10]}:"
    yield name
    if redis_up():
        drop_prefix(name)


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def backend(request, prefix):
    """(state, clock) for each backend."""
    clock = Clock(real=request.param == "redis")
    if request.param == "memory":
        return MemoryState(clock=clock), clock
    return RedisState(REDIS_URL, prefix, clock=clock), clock


# -- the same behaviour on both backends ------------------------------------------------------------

def test_first_time_is_true_once_until_it_expires(backend):
    state, clock = backend
    assert state.run(FirstTime("seen:1", 0.5), FirstTime("seen:1", 0.5), FirstTime("seen:2", 0.5)) == [True, False, True]
    assert state.run(FirstTime("seen:1", 0.5)) == [False]
    clock.later(0.7)
    assert state.run(FirstTime("seen:1", 0.5)) == [True]


def test_values_are_stored_replaced_forgotten_and_expire(backend):
    state, clock = backend
    assert state.run(Get("v")) == [None]
    state.run(Put("v", "一", 10), Put("w", '["/affirm", "/deny"]', 0.5))
    assert state.run(Get("v"), Get("w")) == ["一", '["/affirm", "/deny"]']
    state.run(Put("v", "二", 10))
    assert state.run(Get("v")) == ["二"]
    state.run(Forget("v"))
    clock.later(0.7)
    assert state.run(Get("v"), Get("w")) == [None, None]


def test_token_bucket_gives_a_burst_then_refills(backend):
    state, clock = backend
    limiter_op = TakeToken("rate:t:u1", 0.5, 3)  # 30 per minute, burst 3
    waits = state.run(*[limiter_op] * 4)
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == pytest.approx(2.0)
    assert state.run(TakeToken("rate:t:u2", 0.5, 3)) == [0.0]  # another key has its own bucket
    clock.now += 1.0
    assert state.run(limiter_op)[0] == pytest.approx(1.0)
    clock.now += 1.0  # one token every 2 s
    assert state.run(limiter_op, limiter_op)[0] == 0.0
    assert state.run(TakeToken("rate:t:zero", 0.0, 1), TakeToken("rate:t:zero", 0.0, 1)) == [0.0, 60.0]


def test_a_rate_limiter_on_a_state(backend):
    state, clock = backend
    limiter = RateLimiter(per_minute=30, burst=3, name="sender")
    limiter._own = state
    assert [limiter.allow("u1") for _ in range(4)] == [True, True, True, False]
    clock.now += 2.0
    assert limiter.allow("u1") and not limiter.allow("u1")


def test_sign_in_attempts_count_before_they_are_checked_and_only_success_takes_them_back(backend):
    state, clock = backend
    throttle = LoginThrottle(max_failures=3, window=60)
    throttle._own = state
    keys = ("name:a", "addr:198.51.100.1")
    for _ in range(3):
        wait, stamp = throttle.attempt(keys)
        assert wait == 0 and stamp is not None
        clock.now += 1
    wait, stamp = throttle.attempt(keys)
    assert wait == pytest.approx(57) and stamp is None
    assert throttle.blocked_for(("name:a",)) == pytest.approx(57)
    clock.now += 61
    wait, stamp = throttle.attempt(("name:b", "addr:198.51.100.1"))
    throttle.succeeded("name:b", stamp, ("addr:198.51.100.1",))
    for _ in range(2):  # the address's successful sign-in no longer counts against it
        assert throttle.attempt(("name:c", "addr:198.51.100.1"))[0] == 0
    assert throttle.blocked_for(("addr:198.51.100.1",)) == 0
    throttle.failed(("addr:198.51.100.1",))
    assert throttle.blocked_for(("addr:198.51.100.1",)) > 0


def test_parallel_guesses_cannot_pass_the_throttle_together(backend):
    state, _ = backend
    barrier, results = threading.Barrier(30), []

    def guess():
        barrier.wait()
        results.append(state.run(ThrottleAttempt(("signin:name:target",), 5, 60))[0][0] == 0)

    threads = [threading.Thread(target=guess) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 5


def test_memory_stays_bounded():
    state = MemoryState(max_keys=100)
    for i in range(1000):
        state.run(TakeToken(f"k{i}", 1, 1), FirstTime(f"s{i}", 60), ThrottleAttempt((f"n{i}",), 5, 60))
    assert len(state._buckets) == len(state._values) == len(state._failures) == 100


# -- Redis: one state for every process ---------------------------------------------------------------

@needs_redis
def test_two_processes_share_dedupe_buckets_values_and_throttling(prefix):
    a, b = RedisState(REDIS_URL, prefix), RedisState(REDIS_URL, prefix)
    assert a.run(FirstTime("telegram:1:update:5", 60)) == [True]
    assert b.run(FirstTime("telegram:1:update:5", 60)) == [False]  # the retry reached the other one
    a.run(Put("wechat:buttons:o1", '["/affirm"]', 60))
    assert b.run(Get("wechat:buttons:o1")) == ['["/affirm"]']
    assert [s.run(TakeToken("rate:sender:u", 0.001, 2))[0] == 0 for s in (a, b, a, b)] == [True, True, False, False]
    for s in (a, b, a):
        assert s.run(ThrottleAttempt(("signin:name:x",), 3, 60))[0][0] == 0
    assert b.run(ThrottleAttempt(("signin:name:x",), 3, 60))[0][0] > 0
    other = RedisState(REDIS_URL, prefix + "other:")  # another deployment on the same Redis
    assert other.run(FirstTime("telegram:1:update:5", 60)) == [True]


@needs_redis
def test_a_batch_is_one_round_trip(prefix):
    state = RedisState(REDIS_URL, prefix)
    state.run(TakeToken("warm", 1, 1))  # the scripts are loaded
    before = state.round_trips
    assert state.run(TakeToken("rate:sender:u", 1, 5), Get("carry:x"), FirstTime("seen", 5)) == [0.0, None, True]
    assert state.round_trips == before + 1


@needs_redis
def test_scripts_flushed_from_redis_are_loaded_again_without_running_anything_twice(prefix):
    state = RedisState(REDIS_URL, prefix)
    state.run(TakeToken("rate:t:u", 1, 5))
    redis.Redis.from_url(REDIS_URL).script_flush()
    assert state.run(FirstTime("once", 60), TakeToken("rate:t:u", 1, 5)) == [True, 0.0]
    assert state.run(FirstTime("once", 60)) == [False]


def test_the_password_of_a_redis_url_stays_out_of_logs():
    assert safe_url("redis://:hunter2@10.0.0.5:6380/2") == "redis://:***@10.0.0.5:6380/2"
    assert safe_url("redis://127.0.0.1:6379/1") == "redis://127.0.0.1:6379/1"


def test_the_settings_choose_the_backend(monkeypatch):
    from bot.config import reload_settings

    monkeypatch.delenv("WALLET_REDIS_URL", raising=False)
    reload_settings()
    assert isinstance(shared_state(), MemoryState) and not shared_state().shared
    monkeypatch.setenv("WALLET_REDIS_URL", "redis://127.0.0.1:6379/1")
    monkeypatch.setenv("WALLET_REDIS_PREFIX", "wallet-x:")
    reload_settings()
    state = shared_state()
    assert isinstance(state, RedisState) and state.prefix == "wallet-x:" and state is shared_state()
    assert isinstance(open_state("", "p"), MemoryState)


# -- Redis away --------------------------------------------------------------------------------------

def test_an_unreachable_redis_costs_nothing_but_sharing_and_is_said_once(caplog):
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", "p:", retry_seconds=0.2)  # nothing listens
    caplog.set_level(logging.WARNING, logger="bot.shared_state.redis_backend")
    answers = []
    for i in range(20):
        answers.append(state.run(FirstTime("update:7", 60), TakeToken("rate:sender:u", 0.001, 3)))
        time.sleep(0.02)
    assert answers[0] == [True, 0.0] and answers[1] == [False, 0.0]  # dedupe and limits go on, per process
    assert all(a[1] > 0 for a in answers[3:])
    said = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(said) == 1 and "this process's memory" in said[0].getMessage()
    assert state.down_since is not None


def _redis_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    for _ in range(100):
        try:
            if client.ping():
                return proc
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server on {port} did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_restarted_redis_is_used_again_by_itself_and_said_once(caplog):
    """A private redis-server on its own port (the machine's shared Redis is never stopped)."""
    port = free_port()
    proc = _redis_server(port)
    try:
        a, b = (RedisState(f"redis://127.0.0.1:{port}/0", "p:", retry_seconds=0.3) for _ in range(2))
        caplog.set_level(logging.WARNING, logger="bot.shared_state.redis_backend")
        assert a.run(FirstTime("m1", 60)) == [True] and b.run(FirstTime("m1", 60)) == [False]
        _stop(proc)
        assert a.run(FirstTime("m2", 60)) == [True]  # memory: still answered
        assert a.run(FirstTime("m2", 60)) == [False]
        proc = _redis_server(port)
        time.sleep(0.4)
        assert a.run(FirstTime("m3", 60)) == [True] and b.run(FirstTime("m3", 60)) == [False]  # shared again
        messages = [r.getMessage() for r in caplog.records]
        assert sum("cannot be used" in m for m in messages) == 1
        assert sum("is back after" in m for m in messages) == 1
        assert a.down_since is None
    finally:
        _stop(proc)


# -- the masker's digit memory on the shared state ------------------------------------------------------

def test_a_number_split_over_two_messages_is_masked_whichever_process_takes_each(backend, prefix):
    from bot.privacy.carryover import SharedRecentDigits, mask_in_conversation

    state, _ = backend
    other = RedisState(REDIS_URL, prefix) if isinstance(state, RedisState) else state  # the other worker
    key = b"k" * 32
    first = mask_in_conversation("卡号 6222 0212 3456", "alice", SharedRecentDigits(state, key))
    second = mask_in_conversation("7890 123", "alice", SharedRecentDigits(other, key))
    assert "6222" not in first.text and second.text == "[卡号尾号0123]"
    assert SharedRecentDigits(other, key).get("alice") is None  # completed: forgotten
    mask_in_conversation("6222 0212 3456", "bob", SharedRecentDigits(state, key))
    mask_in_conversation("好的", "bob", SharedRecentDigits(other, key))  # no digits: the memory goes
    assert mask_in_conversation("7890 128", "bob", SharedRecentDigits(state, key)).text == "7890 128"


@needs_redis
def test_the_digit_memory_in_redis_is_sealed_keyed_by_a_hash_and_expires(prefix):
    from bot.privacy.carryover import SharedRecentDigits, Tail, mask_in_conversation

    state = RedisState(REDIS_URL, prefix)
    memory = SharedRecentDigits(state, b"k" * 32, ttl_seconds=0.5)
    mask_in_conversation("卡号 6222 0212 3456", "张三的会话", memory)
    client = redis.Redis.from_url(REDIS_URL)
    [key] = list(client.scan_iter(match=prefix + "*"))
    value = client.get(key)
    assert b"3456" not in value and "张三".encode() not in key and b"card" not in value
    assert 0 < client.pttl(key) <= 500
    assert SharedRecentDigits(state, b"x" * 32).get("张三的会话") is None  # another installation's key
    assert memory.get("张三的会话") == Tail("622202123456", "card")
    time.sleep(0.6)
    assert client.get(key) is None and memory.get("张三的会话") is None  # gone after its time to live
    client.set(key, "garbage", px=5000)
    assert memory.get("张三的会话") is None  # unreadable: as if nothing was kept
