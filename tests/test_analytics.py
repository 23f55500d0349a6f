"""Dashboard numbers, the FAQ gap list and the HTML report on small hand-built conversations,
stored through Rasa's own SQL tracker store (the rows the dashboard reads in production)."""
import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.db.engine import engine_for
from bot.db.models import Ticket
from bot.insights.analytics import Durations, dashboard, percentile
from bot.insights.gaps import GapQuestion, faq_gaps, group_questions
from bot.insights.period import PeriodError, period
from bot.insights.report import collect, write_report

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 20, tzinfo=TZ)  # local midnight of the day the events happen
SINCE, UNTIL = DAY.astimezone(timezone.utc), (DAY + timedelta(days=1)).astimezone(timezone.utc)
TITLES = {"refund": "退款", "payment_failure": "支付/转账失败", "login_failure": "无法登录"}


def at(hour, minute=0, second=0):
    return (DAY + timedelta(hours=hour, minutes=minute, seconds=second)).timestamp()


class Conversation:
    """Rasa events of one conversation, built turn by turn."""

    def __init__(self, sender, channel="socketio"):
        self.sender, self.channel, self.events = sender, channel, []

    def user(self, t, text, intent=None, confidence=0.95, ranking=None):
        from rasa.shared.core.events import UserUttered

        parse = None
        if intent:
            parse = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": [],
                     "intent_ranking": ranking or [{"name": intent, "confidence": confidence}]}
        self.events.append(UserUttered(text, parse_data=parse, intent=(parse or {}).get("intent"),
                                       input_channel=self.channel, timestamp=t))
        return self

    def does(self, t, *actions, bot=None, pause=False):
        from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationPaused

        for i, name in enumerate(actions):
            self.events.append(ActionExecuted(name, timestamp=t + 0.1 + i / 100))
        if bot:
            self.events.append(BotUttered(bot, timestamp=t + 0.2))
        if pause:
            self.events.append(ConversationPaused(timestamp=t + 0.3))
        self.events.append(ActionExecuted("action_listen", timestamp=t + 0.4))
        return self

    def resume(self, t):
        from rasa.shared.core.events import ConversationResumed

        self.events.append(ConversationResumed(timestamp=t))
        return self


def store_conversations(path, conversations, url=None):
    """Save through Rasa's SQLTrackerStore (SQLite file, or the database at `url`)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(dialect="postgresql", host=url) if url else SQLTrackerStore(dialect="sqlite", db=str(path))
    for c in conversations:
        asyncio.run(store.save(DialogueStateTracker.from_events(c.sender, c.events)))
    store.engine.dispose()
    return url or f"sqlite:///{path}"


FALLBACK_RANKING = [{"name": "nlu_fallback", "confidence": 0.7}, {"name": "refund", "confidence": 0.3},
                    {"name": "payment_failure", "confidence": 0.2}]


def conversations():
    a = (Conversation("a", "socketio")
         .user(at(10, 5), "你好", "greet").does(at(10, 5), "action_greet")
         .user(at(10, 6), "退款多久能到", "refund").does(at(10, 6), "action_answer_faq", bot="这个回答解决您的问题了吗？")
         .user(at(10, 7), "/affirm", "affirm", 1.0).does(at(10, 7), "action_resolved"))
    b = (Conversation("b", "wechat")
         .user(at(10, 20), "付款一直失败", "payment_failure").does(at(10, 20), "action_answer_faq")
         .user(at(10, 21), "否", "deny").does(at(10, 21), "action_not_solved")
         .user(at(10, 22), "还是不行", "deny").does(at(10, 22), "action_handoff", pause=True)
         .user(at(10, 25), "我等着", "affirm").resume(at(11, 0))
         .user(at(11, 1), "5"))  # the rating: answered by the relay, Rasa only logs it
    c = (Conversation("c", "rest")
         .user(at(21, 0), "帮我订张机票", "out_of_scope").does(at(21, 0), "action_handoff", pause=True))
    d = (Conversation("d", "socketio")
         .user(at(21, 10), "可以用美元充值吗", "nlu_fallback", 0.7, FALLBACK_RANKING)
         .does(at(21, 10), "action_clarify_or_handoff")
         .user(at(21, 11), "能不能充值美元", "nlu_fallback", 0.7, FALLBACK_RANKING)
         .does(at(21, 11), "action_clarify_or_handoff", pause=True))
    e = (Conversation("e", "socketio")
         .user(at(21, 30), "我手机号13912345678登录不上", "login_failure").does(at(21, 30), "action_answer_faq")
         .user(at(21, 31), "没用", "deny").does(at(21, 31), "action_not_solved"))
    f = (Conversation("f", "socketio")  # outside the window: the next local day
         .user(at(24, 30), "退款多久能到", "refund").does(at(24, 30), "action_answer_faq"))
    g = (Conversation("g", "socketio")
         .user(at(21, 40), "支持美元充值吗", "out_of_scope").does(at(21, 40), "action_handoff", pause=True)
         .user(at(21, 41), "😀", "nlu_fallback", 0.3).user(at(21, 42), "/contact_human", "contact_human", 1.0))
    return [a, b, c, d, e, f, g]


@pytest.fixture
def tracker_url(tmp_path):
    return store_conversations(tmp_path / "tracker.db", conversations())


def test_conversations_per_day_hour_and_channel(tracker_url):
    d = dashboard(tracker_url, None, SINCE, UNTIL, titles=TITLES).as_dict()
    assert d["conversations"] == 6 and d["channels"] == {"socketio": 4, "wechat": 1, "rest": 1}
    assert d["conversations_per_day"] == {"2026-11-20": {"socketio": 4, "wechat": 1, "rest": 1}}
    hourly = d["conversations_per_hour"]
    assert hourly["socketio"][10] == 1 and hourly["socketio"][21] == 3 and hourly["wechat"][10] == 1
    assert hourly["rest"][21] == 1 and sum(map(sum, hourly.values())) == 6
    assert d["user_messages"] == 16
    assert d["peak_hour"] == {"hour": "2026-11-20 21:00", "messages": 8}
    assert (d["messages_per_hour"][10], d["messages_per_hour"][11], d["messages_per_hour"][21]) == (7, 1, 8)
    json.dumps(d)  # JSON-serialisable as it is


def test_turn_outcomes_topics_and_resolution(tracker_url):
    d = dashboard(tracker_url, None, SINCE, UNTIL, titles=TITLES).as_dict()
    assert d["outcomes"] == {"answered": 3, "handed_off": 2, "out_of_scope": 2, "clarified": 1,
                             "conversation": 4, "to_agent": 3, "relay": 1, "no_reply": 0}
    assert [(t["topic"], t["count"]) for t in d["top_topics"]] == [("login_failure", 1), ("payment_failure", 1), ("refund", 1)]
    assert d["top_topics"][2]["title"] == "退款"
    res = d["resolution"]
    assert (res["answered"], res["asked"], res["resolved"], res["not_resolved"]) == (3, 3, 1, 2)
    assert res["rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert {r["topic"]: r["rate"] for r in res["per_topic"]} == {"refund": 1.0, "payment_failure": 0.0, "login_failure": 0.0}


def _ticket(n, created, claimed=None, closed=None, rating=None, status="closed", reason="contact_human"):
    return {"number": f"T{n}", "conversation_id": f"c{n}", "channel": "socketio", "status": status, "priority": 3,
            "reason": reason, "suggestions": [], "recent_messages": [], "created_at": created, "claimed_at": claimed,
            "closed_at": closed, "rating": rating, "awaiting_rating": False}


def test_ticket_waits_handling_and_ratings(tracker_url, sqlite_url):
    base = SINCE.replace(tzinfo=None) + timedelta(hours=3)
    minutes = lambda m: timedelta(minutes=m)  # noqa: E731
    rows = [
        _ticket(1, base, base + minutes(2), base + minutes(12), 5),
        _ticket(2, base, base + minutes(4), base + minutes(10), 4, reason="low_confidence"),
        _ticket(3, base, base + minutes(6), base + minutes(26), 2, reason="low_confidence"),
        _ticket(4, base, base + minutes(30), None, None, status="claimed"),
        _ticket(5, base, None, base + minutes(1), None, status="cancelled"),
        _ticket(6, base - timedelta(days=2), base, base + minutes(5), 1),  # created before the window
    ]
    engine = engine_for(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(Ticket.__table__), rows)
    d = dashboard(tracker_url, sqlite_url, SINCE, UNTIL, titles=TITLES).as_dict()
    assert d["ratings"] == {"count": 3, "mean": 3.67, "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}}
    assert d["handoffs"]["tickets"] == 5 and d["handoffs"]["by_reason"] == {"contact_human": 3, "low_confidence": 2}
    assert d["queue_wait"] == {"count": 4, "median": 240.0, "p90": 1800.0, "mean": 630.0}
    assert d["handling_time"] == {"count": 3, "median": 600.0, "p90": 1200.0, "mean": 720.0}


def test_percentiles_are_nearest_rank():
    values = list(range(1, 11))
    assert percentile(values, 50) == 5 and percentile(values, 90) == 9 and percentile(values, 100) == 10
    assert percentile([7], 90) == 7
    assert Durations.of([]) == Durations()
    assert Durations.of([5, -1, None]) == Durations(1, 5.0, 5.0, 5.0)


def test_gap_list_from_conversations(tracker_url):
    groups = faq_gaps(tracker_url, SINCE, UNTIL)
    by_example = {g.example: g for g in groups}
    dollars = next(g for g in groups if "美元" in g.example)
    assert dollars.count == 3 and dollars.conversations == 2
    assert set(dollars.texts) == {"可以用美元充值吗", "能不能充值美元", "支持美元充值吗"}
    assert dollars.reasons == {"low_confidence": 1, "nlu_fallback": 1, "out_of_scope": 1}
    assert dollars.topics == {"refund": 2, "out_of_scope": 1} and dollars.topic == "refund"
    # denied and 没用 answers are gaps too; 是 and button payloads and emoji are not
    assert by_example["付款一直失败"].reasons == {"deny": 1} and by_example["付款一直失败"].topic == "payment_failure"
    unhelpful = next(g for g in groups if g.reasons == {"unhelpful": 1})
    assert unhelpful.topic == "login_failure"
    assert "13912345678" not in unhelpful.example and "5678" in unhelpful.example  # masked for display
    assert by_example["帮我订张机票"].reasons == {"out_of_scope": 1}
    texts = [t for g in groups for t in g.texts]
    assert not any(t.startswith("/") or t == "😀" or "退款多久" in t for t in texts)
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)
    assert json.dumps([g.as_dict() for g in groups], ensure_ascii=False)


def _q(text, topic=None, reason="nlu_fallback", sender="s", t=0.0):
    return GapQuestion(text, topic, reason, sender, t)


def test_similar_questions_group_and_different_ones_do_not():
    questions = [
        _q("积分可以兑换什么", "feedback"), _q("我的积分怎么兑换话费", "feedback"), _q("积分在哪里兑换", None),
        _q("积分可以兑换什么", "feedback", sender="s2"),
        _q("怎么开通数字人民币钱包", "account_security"), _q("数字人民币在哪里开通", "account_security"),
        _q("亲情卡怎么绑定", "change_account_info"),
    ]
    groups = group_questions(questions)
    assert [sorted(g.texts) for g in groups] == [
        sorted(["积分可以兑换什么", "我的积分怎么兑换话费", "积分在哪里兑换"]),
        sorted(["怎么开通数字人民币钱包", "数字人民币在哪里开通"]),
        ["亲情卡怎么绑定"],
    ]
    points = groups[0]
    assert points.count == 4 and points.example == "积分可以兑换什么" and points.texts[0] == "积分可以兑换什么"
    assert points.topic == "feedback" and points.conversations == 2
    again = group_questions(list(reversed(questions)))
    assert [g.as_dict() for g in again] == [g.as_dict() for g in groups]  # order-independent, stable ids
    # punctuation, spaces, case and traditional characters do not make a new wording
    same = group_questions([_q("積分可以兌換什麼？"), _q("积分可以兑换什么")])
    assert len(same) == 1 and len(same[0].texts) == 1 and same[0].count == 2


def test_window_parsing():
    now = datetime(2026, 11, 21, 4, 0, tzinfo=timezone.utc)
    assert period(None, now=now) == (now - timedelta(days=7), now)
    assert period("1", now=now) == (now - timedelta(days=1), now)
    start, end = period(None, "2026-11-20", "2026-11-21", tz=TZ)
    assert (start, end) == (SINCE, UNTIL)
    for bad in [dict(days="abc"), dict(days=0), dict(days=1000), dict(since="昨天"),
                dict(since="2026-11-21", until="2026-11-20")]:
        with pytest.raises(PeriodError):
            period(now=now, tz=TZ, **bad)


def test_missing_tracker_database_is_empty_and_not_created(tmp_path):
    missing = tmp_path / "none.db"
    d = dashboard(f"sqlite:///{missing}", None, SINCE, UNTIL, titles=TITLES).as_dict()
    assert d["conversations"] == 0 and d["resolution"]["rate"] is None and d["peak_hour"]["messages"] == 0
    assert faq_gaps(f"sqlite:///{missing}", SINCE, UNTIL) == []
    assert not missing.exists()


def test_html_report_is_self_contained(tracker_url, sqlite_url, tmp_path):
    from bot.insights.charts import CHARTS, cjk_font

    data = collect(tracker_url, sqlite_url, SINCE, UNTIL, TZ)
    page = write_report(data, tmp_path / "out")
    html = page.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(CHARTS)
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "可以用美元充值吗" in html and "13912345678" not in html
    for name in CHARTS:
        png = (tmp_path / "out" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 2000
    saved = json.loads((tmp_path / "out" / "dashboard.json").read_text(encoding="utf-8"))
    assert saved["analytics"]["conversations"] == 6 and saved["gap_groups"] == len(data["gaps"])
    if Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc").exists():
        assert cjk_font() == "WenQuanYi Zen Hei"


@pytest.mark.postgres
def test_postgresql_tracker_store_gives_the_same_numbers(tracker_url, postgres_url):
    """Scale-out keeps conversations in PostgreSQL: same rows, same dashboard."""
    url = store_conversations(None, conversations(), postgres_url)
    try:
        on_pg = dashboard(url, url, SINCE, UNTIL, titles=TITLES).as_dict()
        on_sqlite = dashboard(tracker_url, None, SINCE, UNTIL, titles=TITLES).as_dict()
        for key in ("conversations", "conversations_per_hour", "outcomes", "resolution", "peak_hour", "top_topics"):
            assert on_pg[key] == on_sqlite[key], key
        assert [g.as_dict() for g in faq_gaps(url, SINCE, UNTIL)] == [g.as_dict() for g in faq_gaps(tracker_url, SINCE, UNTIL)]
    finally:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS events"))
        engine.dispose()
