"""Faults on the real scale-out, as `make scale` starts it: nginx, two Rasa instances, the agent
console (also the model server), PostgreSQL and Redis. Redis and PostgreSQL are private ones
(bot/devtools/services.py) so they can be restarted without touching the machine's, and the
project is a copy, so switching models changes nothing of this checkout. Instance 0 runs two
Sanic workers (a switch must reach every worker), instance 1 one; instance 1 is killed.

  - a model switch, `--restore-previous` and a model file changed by hand reach every instance
    and worker, the parse cache included;
  - the console works whichever instance holds the conversation;
  - kill -9 of one instance under 50 users: nothing lost, nothing answered twice, every
    conversation goes on with its history, tickets and agent replies intact; it rejoins;
  - Redis restarted mid-load, PostgreSQL restarted mid-load.

The measured figures are printed and written to reports/scale_faults.json (README "Scale-out").
"""
from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest
import requests
from sqlalchemy import create_engine, text

from bot.devtools.bench.faults import Recording, recorded_load
from bot.devtools.bench.load import scripts_for
from bot.handoff.store import TicketStore
from bot.security.tokens import api_headers
from bot.serving.model_pull import PULL_SECONDS
from bot.training import model_switch
from tests.conftest import MODEL, ROOT, needs
from tests.model_variant import model_variant
from tests.servers import ConsoleAgent, always_open_settings, running_cluster

pytestmark = [pytest.mark.server, pytest.mark.model, pytest.mark.postgres]

QUESTION = "模型切换演练专用的问题"
"""Asked of both models: only the variant has it labelled (refund)."""
REPORT = ROOT / "reports" / "scale_faults.json"
figures: Dict[str, Dict] = {}


@dataclass
class Setup:
    cluster: object
    redis: object
    pg: object
    project: Path
    variant: Path
    variant_id: str
    shipped_id: str

    @property
    def urls(self) -> List[str]:
        return [i["url"] for i in self.cluster.instances]


def _project_copy(base: Path) -> Path:
    project = base / "project"
    shutil.copytree(ROOT / "data", project / "data")
    for name in ("domain.yml", "config.yml", "assistant.yml"):
        shutil.copy2(ROOT / name, project / name)
    (project / "models").mkdir()
    shutil.copy2(MODEL, project / "models" / "wallet.tar.gz")
    return project


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from bot.devtools.services import PrivatePostgres, PrivateRedis, pg_bin, redis_binary

    needs("postgres")
    if redis_binary() is None or pg_bin("initdb") is None:
        pytest.fail("the fault tests start their own redis-server and PostgreSQL (initdb, pg_ctl): "
                    "apt-get install redis-server postgresql")
    base = tmp_path_factory.mktemp("faults")
    project = _project_copy(base)
    variant = base / "variant.tar.gz"
    variant_id = model_variant(MODEL, variant, {QUESTION: "refund"})
    redis = PrivateRedis(base / "redis")
    redis.start()
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        pg.create_database()
        with running_cluster(base / "cluster", instances=2, pg_url=pg.url, redis_url=redis.url,
                             settings=always_open_settings(base), project_root=project,
                             instance_env=[{"SANIC_WORKERS": "2", "SANIC_KEEP_ALIVE": "False"}, {}]) as cluster:
            yield Setup(cluster, redis, pg, project, variant, variant_id,
                        model_switch.model_id_of(project / "models" / "wallet.tar.gz"))
    finally:
        redis.stop()
        pg.remove()
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")


def chat(url: str, sender: str, message: str) -> List[Dict]:
    r = requests.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=90)
    assert r.status_code == 200, r.text
    return r.json()


def texts(replies: List[Dict]) -> str:
    return "\n".join(m.get("text") or "" for m in replies)


def tracker(url: str, sender: str) -> Dict:
    r = requests.get(f"{url}/conversations/{sender}/tracker", headers=api_headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def processes(setup: Setup) -> List[Dict]:
    return requests.get(f"{setup.cluster.console}/model/processes", timeout=10).json()["processes"]


def wait_until(check, timeout: float, step: float = 0.2) -> float:
    """Seconds until check() is true; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(step)
    return round(time.monotonic() - started, 1)


def all_serve(setup: Setup, model_id: str, workers: int = 3) -> bool:
    """Both instances report `model_id`, and so does every process at its last pull."""
    if any(model_switch.served_model(u) != model_id for u in setup.urls):
        return False
    live = [p for p in processes(setup) if p["seconds_ago"] <= 2 * PULL_SECONDS + 2]
    return len(live) >= workers and all(p["model_id"] == model_id for p in live)


# ---- the model switch ------------------------------------------------------------------------

def test_a_switch_reaches_every_instance_worker_and_parse_cache(setup, monkeypatch, capsys):
    from bot.cli import main
    from bot.config import reload_settings

    old, new = setup.shipped_id, setup.variant_id
    wait_until(lambda: all_serve(setup, old), 60)  # three processes (2 workers + 1) have pulled
    refund = "退款"
    for url in setup.urls:  # the old model's reading of the question is in every parse cache
        for _ in range(4):
            assert refund not in texts(chat(url, f"sw-{uuid.uuid4().hex[:8]}", QUESTION))

    # 1. the switch the retrain job makes once the eval gate passed: file, PUT /model, GET /status
    candidate = setup.project / "models" / "candidate.tar.gz"
    shutil.copy2(setup.variant, candidate)
    started = time.monotonic()
    results = model_switch.switch(setup.project, candidate, setup.urls)
    switch_s = round(time.monotonic() - started, 1)
    assert [(r.url, r.status, r.model_id) for r in results] == [(u, "loaded", new) for u in setup.urls]
    workers_s = round(switch_s + wait_until(lambda: all_serve(setup, new), 30), 1)
    for url in setup.urls:  # every worker answers with the new model; nothing from the old cache
        for _ in range(4):
            assert refund in texts(chat(url, f"sw-{uuid.uuid4().hex[:8]}", QUESTION))

    # 2. `bot faq retrain --restore-previous`, as staff run it: every instance and worker back
    monkeypatch.setenv("WALLET_PROJECT_ROOT", str(setup.project))
    monkeypatch.setenv("WALLET_RASA_INSTANCES", ",".join(setup.urls))
    monkeypatch.setenv("CONSOLE_PORT", setup.cluster.console.rsplit(":", 1)[1])
    reload_settings()
    started = time.monotonic()
    assert main(["faq", "retrain", "--restore-previous"]) == 0
    restore_s = round(time.monotonic() - started, 1)
    out = capsys.readouterr().out
    assert all(f"{u}: 已加载之前的模型（模型 {old}）" in out for u in setup.urls), out
    restore_workers_s = round(restore_s + wait_until(lambda: all_serve(setup, old), 30), 1)
    for url in setup.urls:
        assert refund not in texts(chat(url, f"sw-{uuid.uuid4().hex[:8]}", QUESTION))

    # 3. the file changed by anything else (a copy by hand, a job on another host): the pull alone
    model_switch.install(setup.project, Path(shutil.copy2(setup.variant, setup.project / "models" / "c2.tar.gz")))
    pull_s = wait_until(lambda: all_serve(setup, new), PULL_SECONDS + 25)
    assert main(["faq", "retrain", "--status"]) == 0
    out = capsys.readouterr().out
    assert all(f"{u}: {new}（当前模型）" in out for u in setup.urls), out
    assert out.count(f"{new}（当前模型，") >= 3, out  # each process, from the model server
    model_switch.restore_previous(setup.project, setup.urls)
    wait_until(lambda: all_serve(setup, old), 30)

    figures["model_switch"] = {
        "switch_all_instances_s": switch_s, "switch_all_workers_s": workers_s,
        "restore_previous_instances_s": restore_s, "restore_previous_workers_s": restore_workers_s,
        "pull_only_all_processes_s": pull_s, "pull_interval_s": PULL_SECONDS, "processes": 3}
    print("\nmodel switch:", figures["model_switch"])


# ---- the console ---------------------------------------------------------------------------

def _queue_events(stream):
    """The queue snapshots of the console's server-sent events."""
    event = None
    for line in stream.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "queue":
            yield json.loads(line[6:])


def test_the_console_works_whichever_instance_holds_the_conversation(setup):
    a, b = setup.urls
    agent = ConsoleAgent({"db_url": setup.cluster.db_url, "console": setup.cluster.console})
    user = f"console-{uuid.uuid4().hex[:8]}"
    chat(a, user, "我的退款申请好几天了还没到账")
    chat(a, user, "我要转人工客服")  # the hand-off happens on instance 0
    number = TicketStore(setup.cluster.db_url).active_ticket(user)["number"]

    stream = requests.get(f"{setup.cluster.console}/api/events", headers=agent.headers, stream=True, timeout=30)
    events = _queue_events(stream)
    try:
        first = next(t for snapshot in events for t in snapshot if t["number"] == number)
        ack = chat(b, user, "订单号 20261130001，麻烦尽快处理")  # the user writes again, through instance 1
        assert number in texts(ack)
        started = time.monotonic()
        for snapshot in events:  # the live queue shows it (state is in the shared database)
            mine = [t for t in snapshot if t["number"] == number]
            if mine and mine[0]["last_message_id"] > first["last_message_id"]:
                break
            assert time.monotonic() - started < 15, "the live queue did not show the message from instance 1"
    finally:
        stream.close()

    view = requests.get(f"{setup.cluster.console}/api/tickets/{number}", headers=agent.headers, timeout=10).json()
    assert "订单号 20261130001" in "\n".join(m["text"] for m in view["transcript"])
    reply = "您好，我是客服小王，正在核实退款进度"
    agent.take(number, reply)  # claim + reply through nginx: whichever instance takes it
    for url in (a, b):
        assert [e["text"] for e in tracker(url, user)["events"] if e["event"] == "bot"].count(reply) == 1
    polled = requests.post(f"{b}/webhooks/rest/poll", json={"sender": user}, timeout=10).json()
    assert reply in texts(polled)
    assert reply not in texts(requests.post(f"{a}/webhooks/rest/poll", json={"sender": user}, timeout=10).json())
    closed = agent.post(number, "close", note="退款已原路退回")
    assert closed.status_code == 200 and closed.json()["resumed"], closed.text
    back = requests.post(f"{a}/webhooks/rest/poll", json={"sender": user}, timeout=10).json()
    assert any(btn["payload"] == "5" for m in back for btn in m.get("buttons", [])), back
    assert "感谢您的评价" in texts(chat(b, user, "5"))
    assert TicketStore(setup.cluster.db_url).get(number)["rating"] == 5


# ---- kill -9 under load -----------------------------------------------------------------------

def _load_with_fault(url: str, users: int, seconds: float, fault_at: float, fault) -> tuple:
    """Run the recorded load; call `fault()` `fault_at` seconds in; (recording, fault time)."""
    when: Dict[str, float] = {}

    def trigger():
        time.sleep(fault_at)
        when["at"] = time.monotonic()
        fault()
        when["done"] = time.monotonic()

    thread = threading.Thread(target=trigger, daemon=True)
    thread.start()
    recording = asyncio.run(recorded_load(f"{url}/webhooks/rest/webhook", users, seconds, scripts_for("ours", 11)))
    thread.join(timeout=120)
    return recording, when


def check_histories(api: str, recording: Recording) -> int:
    """Every conversation's stored user messages are exactly the answered ones, in order, and
    each answer the user got is stored (but the hand-off relay's own notes, which never are).
    Returns the number checked."""
    turns = recording.answered_turns()
    for sender, answered in turns.items():
        events = tracker(api, sender)["events"]
        assert [e["text"] for e in events if e["event"] == "user"] == [t.text for t in answered], sender
        bots = [e.get("text") for e in events if e["event"] == "bot"]
        for turn in answered:
            missing = [t for t in turn.answers if t and t not in bots and t not in turn.system_notes]
            assert not missing, (sender, turn.text, turn.try_no, turn.served_by, missing, events[-12:])
    return len(turns)


def no_duplicate_tickets(db_url: str) -> int:
    with create_engine(db_url).connect() as conn:
        twice = conn.execute(text("SELECT conversation_id FROM handoff_tickets GROUP BY conversation_id "
                                  "HAVING count(*) > 1")).fetchall()
        total = conn.execute(text("SELECT count(*) FROM handoff_tickets")).scalar()
    assert twice == [], twice
    return total


def summary(recording: Recording, fault_at: float) -> Dict:
    first = recording.failed_first_tries()
    return {
        "messages": len({a.request_id for a in recording.attempts}),
        "attempts": len(recording.attempts),
        "failed_first_tries": len(first),
        "client_saw": recording.what_clients_saw(first),
        "lost_after_retries": len(recording.unanswered()),
        "recovery_s": recording.recovery_seconds(fault_at),
        "slowest_answer_in_flight_s": round(max([a.end - a.start for a in recording.attempts
                                                  if a.ok and a.start <= fault_at <= a.end] or [0]), 2),
        "per_second_around_fault": recording.per_second(fault_at - 5, fault_at + 15),
    }


def test_killing_an_instance_under_50_users_loses_nothing_and_it_rejoins(setup):
    cluster = setup.cluster
    agent = ConsoleAgent({"db_url": cluster.db_url, "console": cluster.console})
    user = f"kept-{uuid.uuid4().hex[:8]}"
    chat(cluster.url, user, "我要转人工客服")
    number = TicketStore(cluster.db_url).active_ticket(user)["number"]
    agent.take(number, "您好，我是客服小王，稍等我查一下")

    victim = cluster.instances[1]
    recording, when = _load_with_fault(cluster.url, 50, 40, 12, lambda: cluster.kill_instance(1))
    assert victim["proc"].poll() is not None
    result = summary(recording, when["at"])
    print("\nkill -9 under 50 users:", result)
    assert result["lost_after_retries"] == 0, recording.unanswered()[:5]
    assert not [a for a in recording.attempts if a.status == 200 and not a.answers], "a 200 without an answer"
    assert all(a.status or a.error for a in recording.failed_first_tries())  # every failure visible
    assert result["recovery_s"] is not None and result["recovery_s"] <= 15, result
    survivor = cluster.instances[0]["url"]
    result["conversations_checked"] = check_histories(survivor, recording)
    nginx_log = (cluster.workdir / "nginx_error.log").read_text(errors="replace")
    result["requests_moved_by_nginx"] = sum(1 for line in nginx_log.splitlines()
                                            if "[error]" in line and "reading response header" in line)
    result["answered_from_tracker"] = cluster.instances[0]["log"].read_text(errors="replace").count(
        "was handled before: its answers sent again")
    result["tickets"] = no_duplicate_tickets(cluster.db_url)

    # the hand-off from before the fault: ticket, transcript and agent reply intact; the agent goes on
    ticket = TicketStore(cluster.db_url).get(number)
    assert ticket["status"] == "claimed"
    assert "稍等我查一下" in "\n".join(m["text"] for m in TicketStore(cluster.db_url).transcript(number))
    assert any("稍等我查一下" in (e.get("text") or "") for e in tracker(survivor, user)["events"])
    r = agent.post(number, "reply", text="查到了，退款已在路上")
    assert r.status_code == 200 and r.json()["in_tracker"], r.text
    polled = requests.post(f"{cluster.url}/webhooks/rest/poll", json={"sender": user}, timeout=10).json()
    assert "退款已在路上" in texts(polled)

    # restart it: nginx takes it back by itself (fail_timeout), with the current model
    up_s = cluster.start_instance(1)
    port = str(victim["port"])
    rejoined_s = wait_until(lambda: requests.post(
        f"{cluster.url}/webhooks/rest/webhook", json={"sender": f"rejoin-{uuid.uuid4().hex[:6]}", "message": "你好"},
        timeout=30).headers.get("X-Served-By", "").endswith(port), 30, step=0.5)
    assert model_switch.served_model(victim["url"]) == setup.shipped_id
    result.update(restart_up_s=round(up_s, 1), rejoined_after_up_s=rejoined_s)
    figures["kill_one_instance"] = result
    print("restart:", {"up_s": result["restart_up_s"], "rejoined_after_up_s": rejoined_s})


# ---- Redis and PostgreSQL restarts -------------------------------------------------------------

def _all_alive(setup: Setup) -> None:
    assert all(i["proc"].poll() is None for i in setup.cluster.instances), "an instance crashed"


def test_a_redis_restart_mid_load_loses_no_message(setup):
    wait_until(lambda: all(model_switch.served_model(u) for u in setup.urls), 120)
    recording, when = _load_with_fault(setup.cluster.url, 30, 25, 8, lambda: setup.redis.restart(1.0))
    result = summary(recording, when["at"])
    result["redis_down_s"] = round(when["done"] - when["at"], 1)
    print("\nRedis restart under 30 users:", result)
    _all_alive(setup)
    assert result["lost_after_retries"] == 0 and result["failed_first_tries"] == 0, result
    result["conversations_checked"] = check_histories(setup.urls[0], recording)
    figures["redis_restart"] = result


def test_a_postgres_restart_mid_load_fails_visibly_and_recovers_by_itself(setup):
    recording, when = _load_with_fault(setup.cluster.url, 30, 25, 8, lambda: setup.pg.restart(2.0))
    result = summary(recording, when["at"])
    result["postgres_down_s"] = round(when["done"] - when["at"], 1)
    print("\nPostgreSQL restart under 30 users:", result)
    _all_alive(setup)
    failed = [a for a in recording.attempts if not a.ok]
    assert all(a.status in (502, 503, 504) for a in failed), recording.what_clients_saw()
    assert all("请稍后重试" in a.error for a in failed if a.status == 503), {a.error for a in failed}
    assert result["lost_after_retries"] == 0, recording.unanswered()[:5]  # the clients' retries got through
    last_failure = max((a.end for a in failed), default=when["at"])
    assert last_failure <= when["done"] + 5, "errors went on after PostgreSQL was back"
    result["conversations_checked"] = check_histories(setup.urls[0], recording)
    for url in setup.urls:  # both instances serve new conversations without a restart
        assert chat(url, f"after-pg-{uuid.uuid4().hex[:6]}", "退款一般几天能到账")
    figures["postgres_restart"] = result
