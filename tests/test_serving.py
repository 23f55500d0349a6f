"""The fast serving path answers exactly as stock Rasa does.

- the cached tracker store returns what the stock SQL store would, sees writes of another
  instance, and never serves a half-finished turn;
- the dask-free graph runner gives the same parses and predictions as Rasa's dask runner;
- a server on the fast path and a server on the stock path (Rasa's processor, HTTP action
  server, stock SQL tracker store, Rasa's own DIET loading) give the same answers and the same
  transcripts.
"""
from __future__ import annotations

import asyncio
import copy
import uuid

import pytest
import requests
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.security.tokens import api_headers
from bot.serving.parse_cache import ParseCache
from bot.serving.tracker_store import CachedSQLTrackerStore
from tests.conftest import ROOT, load_agent
from tests.servers import running_assistant

DOMAIN = Domain.load(str(ROOT / "domain.yml"))


def run(coro):
    return asyncio.run(coro)


def stores(tmp_path):
    db = str(tmp_path / "tracker.db")
    return (CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db),
            CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db),
            SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db))


def turn(tracker, text, answer):
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered(text, {"name": "refund", "confidence": 0.9}))
    tracker.update(ActionExecuted("action_answer_faq"))
    tracker.update(BotUttered(answer))
    tracker.update(SlotSet("last_topic", "refund"))


def events_of(tracker):
    return [e.as_dict() for e in tracker.events]


def new_conversation(store, sender):
    tracker = DialogueStateTracker.from_events(sender, [ActionExecuted("action_session_start"), SessionStarted()],
                                               DOMAIN.slots)
    run(store.save(tracker))
    return run(store.retrieve(sender))


def test_cached_store_sees_another_instances_writes(tmp_path):
    a, b, stock = stores(tmp_path)
    tracker = new_conversation(a, "u1")
    turn(tracker, "退款多久到账", "一般1-3个工作日")
    run(a.save(tracker))
    assert run(a.retrieve("u1")) is tracker  # served from memory
    other = run(b.retrieve("u1"))  # a second instance, same database
    assert events_of(other) == events_of(run(stock.retrieve("u1")))
    turn(other, "还没到", "请提供订单号")
    run(b.save(other))
    again = run(a.retrieve("u1"))
    assert again is not tracker and events_of(again) == events_of(run(stock.retrieve("u1")))
    assert [e.text for e in again.events if isinstance(e, UserUttered)] == ["退款多久到账", "还没到"]


def test_a_new_conversation_is_kept_as_the_stock_store_reads_it_back(tmp_path):
    a, _, stock = stores(tmp_path)
    tracker = DialogueStateTracker.from_events("u4", [ActionExecuted("action_session_start"), SessionStarted()],
                                               DOMAIN.slots)
    turn(tracker, "新会话", "答复")
    run(a.save(tracker))
    kept = run(a.retrieve("u4"))
    assert kept is not tracker and events_of(kept) == events_of(run(stock.retrieve("u4")))
    turn(kept, "第二句", "答复二")
    run(a.save(kept))
    assert events_of(run(a.retrieve("u4"))) == events_of(run(stock.retrieve("u4")))


def test_the_first_turn_saved_twice_stays_in_memory(tmp_path, monkeypatch):
    """Rasa saves a new conversation at its session start and again at the end of the turn."""
    a, _, stock = stores(tmp_path)
    live = DialogueStateTracker.from_events("u5", [ActionExecuted("action_session_start"), SessionStarted(),
                                                   ActionExecuted("action_listen")], DOMAIN.slots)
    run(a.save(live))
    live.update(UserUttered("你好", {"name": "greet", "confidence": 0.9}))
    live.update(ActionExecuted("action_greet"))
    live.update(BotUttered("您好"))
    run(a.save(live))
    monkeypatch.setattr(SQLTrackerStore, "_retrieve", lambda *a, **k: pytest.fail("read the stock way"))
    kept = run(a.retrieve("u5"))
    monkeypatch.undo()
    assert events_of(kept) == events_of(run(stock.retrieve("u5")))
    turn(kept, "退款没到", "答复")
    run(a.save(kept))
    assert events_of(run(a.retrieve("u5"))) == events_of(run(stock.retrieve("u5")))


def test_a_turn_that_failed_half_way_is_not_served_from_memory(tmp_path):
    a, _, stock = stores(tmp_path)
    tracker = new_conversation(a, "u2")
    tracker.update(UserUttered("这条没有保存"))  # the turn crashed before save
    fresh = run(a.retrieve("u2"))
    assert "这条没有保存" not in [getattr(e, "text", None) for e in fresh.events]
    assert events_of(fresh) == events_of(run(stock.retrieve("u2")))


def test_a_new_session_is_read_back_like_the_stock_store(tmp_path):
    a, _, stock = stores(tmp_path)
    tracker = new_conversation(a, "u3")
    turn(tracker, "第一次", "答复")
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted(timestamp=tracker.events[-1].timestamp + 1))
    run(a.save(tracker))
    assert events_of(run(a.retrieve("u3"))) == events_of(run(stock.retrieve("u3")))


def test_parse_cache_returns_copies_and_skips_payloads():
    cache = ParseCache(size=2)
    cache.put("退款", {"intent": {"name": "refund"}, "entities": []})
    got = cache.get("退款")
    got["intent"]["name"] = "changed"
    assert cache.get("退款")["intent"]["name"] == "refund"
    assert not ParseCache.cacheable("/affirm") and not ParseCache.cacheable("")
    cache.put("a", {}), cache.put("b", {})
    assert cache.get("退款") is None and cache.stats()["size"] == 2


@pytest.mark.model
def test_sequential_graph_runner_matches_dask():
    from rasa.core.channels.channel import UserMessage

    from bot.serving.graph_runner import SequentialGraphRunner

    agent = load_agent()
    processor = agent.processor
    dask_runner = processor.graph_runner
    texts = ["你好", "退款三天了还没到", "我的账户怎么被冻结了", "帮我订一张机票", "是", "/deny", "🙂"]
    trackers = []
    for text in texts:
        tracker = DialogueStateTracker.from_events("g", [ActionExecuted("action_listen")], DOMAIN.slots)
        parse = processor._parse_message_with_graph(UserMessage(text), tracker)
        tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse))
        trackers.append((text, copy.deepcopy(parse), tracker))
    expected = [(p, processor._predict_next_with_tracker(t).max_confidence_index) for _, p, t in trackers]
    processor.graph_runner = SequentialGraphRunner.adopt(dask_runner)
    for (text, parse, tracker), (want_parse, want_action) in zip(trackers, expected):
        assert processor._parse_message_with_graph(UserMessage(text), tracker) == want_parse, text
        assert processor._predict_next_with_tracker(tracker).max_confidence_index == want_action, text


CONVERSATIONS = [
    ["你好", "退款好几天都没到账", "/affirm", "谢谢", "再见"],
    ["在吗", "付钱的时候总是失败", "/deny", "/deny", "还在吗", "取消转人工", "好的"],
    ["您好", "我想买点股票", "我的钱包被冻住了", "否"],
]


def conversation_log(urls, script):
    sender = f"eq-{uuid.uuid4().hex[:8]}"
    answers = []
    for text in script:
        r = requests.post(f"{urls['rasa']}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
        assert r.status_code == 200
        answers.append([(m.get("text"), [b["payload"] for b in m.get("buttons", [])]) for m in r.json()])
    tracker = requests.get(f"{urls['rasa']}/conversations/{sender}/tracker", headers=api_headers(), timeout=30).json()
    events = [(e["event"], e.get("name") or e.get("text")) for e in tracker["events"]
              if e["event"] in ("user", "bot", "action", "slot", "pause", "resume")]
    return answers, events


@pytest.mark.server
@pytest.mark.model
def test_fast_path_answers_exactly_like_stock_rasa(tmp_path):
    logs = {}
    stock_env = {"WALLET_PROCESSOR": "stock", "WALLET_ACTIONS": "server"}
    for mode, env, store in (("stock", stock_env, "SQL"),
                             ("fast", {}, "bot.serving.tracker_store.CachedSQLTrackerStore")):
        (tmp_path / mode).mkdir()
        with running_assistant(tmp_path / mode, console=False, extra_env=env, tracker_store=store) as urls:
            logs[mode] = [conversation_log(urls, script) for script in CONVERSATIONS]
    for stock, fast in zip(logs["stock"], logs["fast"]):
        assert fast[0] == stock[0]  # the same answers, buttons included
        assert fast[1] == stock[1]  # the same events in the tracker
