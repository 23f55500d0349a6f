"""The shared state on running servers, with a private redis-server started for the test on a
port of its own (stopped and restarted here; the machine's Redis on 6379 is never touched but
for the console test, which uses a key prefix of its own and removes it):

- the Redis round trips of a normal FAQ turn (REST) on the scale-out's Redis lock store, counted
  by Redis itself: 2 (the limits, the masker's memory and the lock in one; the release);
- Redis stops mid-traffic: no crash, no lost message, one clear log line, per-process limits;
  Redis returns: used again by itself, one line says so;
- two agent consoles share the sign-in throttle.
"""
from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Dict, Tuple

import pytest
import redis
import requests

from bot.security.tokens import api_headers
from bot.serving.lock_store import redis_lock_store_yaml
from tests.servers import always_open_settings, free_port, running_assistant, running_console

SENDER_BURST = 4


def start_redis(port: int) -> subprocess.Popen:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
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


def stop_redis(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def limited_settings(workdir: Path) -> Path:
    """assistant.yml, support open 24/7, a conversation may send SENDER_BURST messages at once."""
    text = always_open_settings(workdir).read_text(encoding="utf-8").replace(
        "per_sender: {per_minute: 30, burst: 10}", f"per_sender: {{per_minute: 1, burst: {SENDER_BURST}}}")
    assert f"burst: {SENDER_BURST}}}" in text
    path = workdir / "limited.yml"  # running_assistant writes its own assistant.yml
    path.write_text(text, encoding="utf-8")
    return path


def _serve(tmp_path_factory, name: str, lock_store: bool):
    port = free_port()
    holder = {"proc": start_redis(port), "port": port}
    workdir = tmp_path_factory.mktemp(name)
    env = {"WALLET_REDIS_URL": f"redis://127.0.0.1:{port}/0", "WALLET_REDIS_PREFIX": "rt:",
           "WALLET_SETTINGS": str(limited_settings(workdir))}
    extra = redis_lock_store_yaml(env["WALLET_REDIS_URL"], "rtlock") if lock_store else ""
    try:
        with running_assistant(workdir, console=False, extra_env=env, endpoints_extra=extra) as urls:
            yield {**urls, "redis": holder}
    finally:
        if holder["proc"].poll() is None:
            stop_redis(holder["proc"])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Shared state in Redis, Rasa's in-process lock (as one process with WALLET_REDIS_URL set)."""
    yield from _serve(tmp_path_factory, "shared_state_server", lock_store=False)


@pytest.fixture(scope="module")
def scale_server(tmp_path_factory):
    """Shared state and the Redis lock store on one Redis (as `make scale` and the workers run)."""
    yield from _serve(tmp_path_factory, "shared_state_scale_server", lock_store=True)


def rest(urls: Dict, sender: str, text: str, headers: Dict[str, str] = None) -> requests.Response:
    return requests.post(f"{urls['rasa']}/webhooks/rest/webhook", json={"sender": sender, "message": text},
                         headers=headers or {}, timeout=60)


def counters(client: redis.Redis) -> Tuple[int, int]:
    """(read events Redis processed = round trips, commands) so far, without these INFO calls."""
    reads = client.info("stats")["total_reads_processed"]
    commands = sum(v["calls"] for k, v in client.info("commandstats").items() if k != "cmdstat_info")
    return reads, commands


def measured(client: redis.Redis, send) -> Tuple[int, int]:
    """Round trips and commands `send()` caused (the two INFO reads of a measurement taken off)."""
    before = counters(client)
    send()
    after = counters(client)
    return after[0] - before[0] - 2, after[1] - before[1]


@pytest.mark.server
@pytest.mark.model
def test_a_normal_faq_turn_costs_at_most_two_redis_round_trips(scale_server, capsys):
    server = scale_server
    client = redis.Redis(port=server["redis"]["port"])
    assert measured(client, lambda: None) == (0, 0)  # the measurement itself is taken off exactly
    results = {}
    for kind in ("back end", "user behind the proxy"):
        headers: Dict[str, str] = {}
        sender = f"rt-{uuid.uuid4().hex[:10]}"
        if kind != "back end":
            headers = {"X-Forwarded-For": f"198.51.100.{uuid.uuid4().int % 200 + 20}"}
            session = requests.post(f"{server['rasa']}/webhooks/rest/session", headers=headers, timeout=30).json()
            sender, headers = session["sender"], {**headers, "X-Session-Token": session["token"]}
        assert rest(server, sender, "你好", headers).status_code == 200  # the conversation exists

        def turn():
            r = rest(server, sender, "退款多久到账", headers)
            assert r.status_code == 200 and r.json(), r.text

        results[kind] = measured(client, turn)
    with capsys.disabled():
        print(f"\nRedis per FAQ turn (round trips, commands): {results}")
    # the limits, the masker's memory and the lock in one pipeline; the lock's release
    assert [trips for trips, _ in results.values()] == [2, 2], results
    digits, _ = measured(client, lambda: rest(server, f"rt-{uuid.uuid4().hex[:8]}", "订单号 2024 0101"))
    assert digits <= 3  # a message ending in digits also writes them (sealed) for the next one


@pytest.mark.server
@pytest.mark.model
def test_redis_going_away_loses_no_message_says_so_once_and_comes_back_by_itself(server):
    log = Path(server["rasa_log"])
    assert log.read_text(errors="replace").count("cannot be used") == 0
    stop_redis(server["redis"]["proc"])
    sent: Dict[str, list] = {}
    for i in range(6):  # six conversations, two messages each, while Redis is away
        sender = f"away-{i}-{uuid.uuid4().hex[:6]}"
        for text in ("你好", "提现到银行卡失败了"):
            r = rest(server, sender, text)
            assert r.status_code == 200 and r.json(), r.text  # answered, not an error
            sent.setdefault(sender, []).append(text)
    text = log.read_text(errors="replace")
    assert text.count("cannot be used") == 1, text[-3000:]
    line = next(ln for ln in text.splitlines() if "cannot be used" in ln)
    assert "this process's memory" in line and "per process" in line
    assert "Traceback" not in text
    # the limits go on, in this process
    sender = f"away-limit-{uuid.uuid4().hex[:6]}"
    codes = [rest(server, sender, "在吗").status_code for _ in range(SENDER_BURST + 1)]
    assert codes == [200] * SENDER_BURST + [429]
    for sender, texts in sent.items():  # nothing lost
        tracker = requests.get(f"{server['rasa']}/conversations/{sender}/tracker", headers=api_headers(),
                               timeout=30).json()
        assert [e["text"] for e in tracker["events"] if e["event"] == "user"] == texts
    # Redis returns on the same port: the next messages use it again, by themselves
    server["redis"]["proc"] = start_redis(server["redis"]["port"])
    time.sleep(2.5)
    back = f"back-{uuid.uuid4().hex[:6]}"
    assert rest(server, back, "你好").status_code == 200
    assert rest(server, back, "退款多久到账").status_code == 200
    text = log.read_text(errors="replace")
    assert text.count("is back after") == 1 and text.count("cannot be used") == 1, text[-3000:]
    client = redis.Redis(port=server["redis"]["port"], decode_responses=True)
    assert client.exists(f"rt:rate:sender:{back}")  # the bucket is in Redis again


@pytest.mark.server
def test_two_consoles_count_the_same_wrong_passwords(tmp_path):
    """Several console processes behind one address: a guesser may not get 5 tries from each."""
    from bot.handoff.agents import AgentStore

    prefix = f"test-console-{uuid.uuid4().hex[:8]}:"
    db_url = f"sqlite:///{tmp_path / 'console.db'}"
    AgentStore(db_url).add("小李", "correct-horse-1")
    env = {"WALLET_DB_URL": db_url, "WALLET_REDIS_URL": "redis://127.0.0.1:6379/1", "WALLET_REDIS_PREFIX": prefix}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        with running_console(tmp_path / "a", env) as a, running_console(tmp_path / "b", env) as b:
            def login(base: str, password: str) -> int:
                return requests.post(f"{base}/api/login", json={"name": "小李", "password": password},
                                     timeout=30).status_code

            assert [login(base, "wrong") for base in (a, b, a, b, a)] == [401] * 5
            assert login(b, "wrong") == 429 and login(a, "wrong") == 429
            assert login(b, "correct-horse-1") == 429  # blocked on both: the right password waits too
    finally:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/1")
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
