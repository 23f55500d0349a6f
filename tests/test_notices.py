"""Service notices (issue 7): the store with a controlled clock, time input, the `bot status`
CLI, the FAQ action (notice first, then the answer) and the console API over HTTP."""
import asyncio
import dataclasses
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from actions.faq_actions import ActionAnswerFaq
from actions.shared import faq
from bot.cli import main as cli
from bot.handoff.agents import AgentStore
from bot.handoff.store import TicketStore
from bot.notices.text import messages_before_answer
from bot.notices.timing import NoticeTimeError, parse_when, until_in_words
from bot.notices.store import MAX_TEXT_CHARS, NoticeError, NoticeStore, notice_store
from tests.conftest import ROOT, make_tracker, topic_answers
from tests.servers import running_console

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 10, 12, 0)  # naive UTC = 20:00 in Shanghai


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(sqlite_url, clock):
    return NoticeStore(sqlite_url, clock=clock, tz="Asia/Shanghai")


# --- time input ------------------------------------------------------------------------------

def test_local_time_is_beijing_time_and_stored_as_utc():
    assert parse_when("2026-11-11 02:00", T0, SHANGHAI) == datetime(2026, 11, 10, 18, 0)
    assert parse_when("2026/11/11 02:00", T0, SHANGHAI) == datetime(2026, 11, 10, 18, 0)
    assert parse_when("2026-11-11T02:00+08:00", T0, SHANGHAI) == datetime(2026, 11, 10, 18, 0)
    assert parse_when("2026-11-10T18:00Z", T0, SHANGHAI) == datetime(2026, 11, 10, 18, 0)
    assert parse_when("2026-11-11T03:00+09:00", T0, SHANGHAI) == datetime(2026, 11, 10, 18, 0)


def test_relative_and_clock_times():
    assert parse_when("+2h", T0, SHANGHAI) == T0 + timedelta(hours=2)
    assert parse_when("+30m", T0, SHANGHAI) == T0 + timedelta(minutes=30)
    assert parse_when("+1d2h", T0, SHANGHAI) == T0 + timedelta(days=1, hours=2)
    # 20:00 in Shanghai now: "22:00" is tonight, "08:00" tomorrow morning
    assert parse_when("22:00", T0, SHANGHAI) == datetime(2026, 11, 10, 14, 0)
    assert parse_when("08:00", T0, SHANGHAI) == datetime(2026, 11, 11, 0, 0)


@pytest.mark.parametrize("bad", ["明天", "2026-13-01 02:00", "25:00", "+", "+2x", "", "+400d"])
def test_unreadable_times_say_how_to_write_them(bad):
    with pytest.raises(NoticeTimeError) as err:
        parse_when(bad, T0, SHANGHAI)
    assert any(word in str(err.value) for word in ("无法识别", "不存在", "请填写", "太远"))


def test_until_in_words_for_users():
    assert until_in_words(datetime(2026, 11, 10, 14, 0), T0, SHANGHAI) == "22:00"
    assert until_in_words(datetime(2026, 11, 10, 18, 0), T0, SHANGHAI) == "明天 02:00"
    assert until_in_words(datetime(2026, 11, 14, 18, 0), T0, SHANGHAI) == "11月15日 02:00"


# --- the store ---------------------------------------------------------------------------------

def test_notice_appears_at_start_and_disappears_at_until(store, clock):
    notice = store.set("payment_failure", "支付通道维护中", until="+3h", starts_at="+1h", author="组长")
    assert (notice.starts_at, notice.until) == (T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert store.active() == [] and [n.id for n in store.list()] == [notice.id]
    assert store.list()[0].status(clock()) == "scheduled"
    clock.advance(hours=1)
    assert [n.id for n in store.active()] == [notice.id]
    clock.advance(hours=2, seconds=-1)
    assert [n.text for n in store.for_topic("payment_failure")] == ["支付通道维护中"]
    clock.advance(seconds=1)
    assert store.active() == [] and store.for_topic("payment_failure") == []
    assert store.list() == [] and store.list(include_past=True)[0].status(clock()) == "expired"


def test_topic_notices_and_notices_for_every_topic(store):
    everyone = store.set("all", "系统升级中，部分功能可能短暂不可用", until="+1h")
    payment = store.set("payment_failure", "部分银行卡暂时无法付款", until="+1h")
    assert everyone.topic is None
    assert [n.id for n in store.for_topic("refund")] == [everyone.id]
    assert {n.id for n in store.for_topic("payment_failure")} == {everyone.id, payment.id}
    assert store.set(None, "同样对所有话题", until="+1h").topic is None


def test_cleared_notice_disappears_and_says_who(store, clock):
    notice = store.set("refund", "退款到账延迟", until="+2h")
    clock.advance(minutes=5)
    (cleared,) = store.clear(notice.id, author="小王")
    assert cleared.cleared_by == "小王" and cleared.cleared_at == clock()
    assert store.active() == [] and store.list() == []
    assert store.list(include_past=True)[0].status(clock()) == "cleared"
    with pytest.raises(NoticeError) as again:
        store.clear(notice.id)
    assert again.value.status == 409 and "已于" in again.value.message
    with pytest.raises(NoticeError) as missing:
        store.clear(999)
    assert missing.value.status == 404 and "999" in missing.value.message


def test_clear_by_topic_or_everything(store):
    payment = store.set("payment_failure", "支付维护", until="+1h")
    everyone = store.set(None, "全站维护", until="+1h")
    refund = store.set("refund", "退款延迟", until="+1h", starts_at="+10m")  # scheduled: cleared too
    assert [n.id for n in store.clear(topic="payment_failure")] == [payment.id]
    assert [n.id for n in store.clear(topic="all")] == [everyone.id]
    assert [n.id for n in store.clear()] == [refund.id]
    assert store.clear() == [] and store.list() == []
    with pytest.raises(NoticeError):
        store.clear(refund.id, topic="login_failure")


def test_cache_is_filtered_by_now_and_never_keeps_an_expired_notice(sqlite_url, clock):
    cached = NoticeStore(sqlite_url, clock=clock, tz="Asia/Shanghai", cache_seconds=3600)
    other_process = NoticeStore(sqlite_url, clock=clock, tz="Asia/Shanghai")
    short = cached.set("login_failure", "登录服务波动", until="+10m")
    assert [n.id for n in cached.active()] == [short.id]  # loads the cache
    late = other_process.set(None, "另一进程发布的公告", until="+3h")
    assert [n.id for n in cached.active()] == [short.id]  # served from the cache: no query
    clock.advance(minutes=10)
    assert cached.active() == []  # expired exactly at `until`, although the cache is an hour old
    clock.advance(hours=1)  # the TTL has passed: the other process's notice shows up
    assert [n.id for n in cached.active()] == [late.id]
    other_process.clear(late.id)
    assert [n.id for n in cached.active()] == [late.id]  # until the TTL passes again …
    cached.clear()  # … or a change goes through this store
    assert cached.active() == []


def test_set_and_clear_through_the_store_refresh_its_cache(sqlite_url, clock):
    cached = NoticeStore(sqlite_url, clock=clock, tz="Asia/Shanghai", cache_seconds=3600)
    assert cached.active() == []
    notice = cached.set(None, "维护中", until="+1h")
    assert [n.id for n in cached.active()] == [notice.id]
    cached.clear(notice.id)
    assert cached.active() == []


@pytest.mark.parametrize("topic, text, until, starts, expected", [
    ("payments", "维护中", "+1h", None, "未知话题"),
    ("all", "   ", "+1h", None, "不能为空"),
    ("all", "维" * (MAX_TEXT_CHARS + 1), "+1h", None, "太长"),
    ("all", "维护中", "2026-11-10 08:00", None, "已经过去"),
    ("all", "维护中", "+2h", "+3h", "必须晚于开始时间"),
    ("all", "维护中", "下周", None, "无法识别"),
    ("all", "维护中", "", None, "请填写结束时间"),
    ("all", "系统升级，请提供您的验证码完成验证", "+1h", None, "验证码"),
    ("all", 42, "+1h", None, "必须是文字"),
])
def test_bad_input_is_refused_with_a_chinese_reason(store, topic, text, until, starts, expected):
    with pytest.raises(NoticeError) as err:
        store.set(topic, text, until, starts_at=starts)
    assert isinstance(err.value, ValueError) and expected in err.value.message
    assert store.list(include_past=True) == []


def test_public_shape_has_only_topic_text_until(store):
    notice = store.set("refund", "退款到账延迟", until="2026-11-11 02:00")
    assert store.public_dict(notice) == {"topic": "refund", "text": "退款到账延迟", "until": "2026-11-11T02:00:00+08:00"}
    staff = store.staff_dict(notice)
    assert staff["until_local"] == "2026-11-11 02:00" and staff["until"] == "2026-11-10T18:00:00Z"
    assert staff["status"] == "active"


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_set_list_clear(handoff_db, capsys):
    assert cli(["status", "set", "--topic", "payment_failure", "--until", "+2h", "--by", "组长",
                "支付通道维护中，部分银行卡暂时无法付款"]) == 0
    out = capsys.readouterr().out
    assert "已发布公告 #1" in out and "payment_failure" in out and "北京时间" in out
    assert cli(["status", "set", "--until", "+1h", "全站", "维护中"]) == 0  # --topic omitted = every topic
    assert cli(["status", "list"]) == 0
    out = capsys.readouterr().out
    assert "#1" in out and "#2" in out and "生效中" in out and "全站 维护中" in out and "所有话题" in out
    assert [n.topic for n in notice_store().active()] == ["payment_failure", None]
    assert cli(["status", "clear", "1"]) == 0
    assert "已撤下公告 #1" in capsys.readouterr().out
    assert cli(["status", "list"]) == 0
    assert "#1 " not in capsys.readouterr().out
    assert cli(["status", "list", "--all"]) == 0
    assert "已撤下" in capsys.readouterr().out
    assert cli(["status", "clear", "--topic", "all"]) == 0
    assert "已撤下公告 #2" in capsys.readouterr().out
    assert cli(["status", "clear"]) == 0
    assert "没有需要撤下的公告" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["status", "set", "--topic", "nope", "--until", "+1h", "维护"], "未知话题"),
    (["status", "set", "--until", "2020-01-01 00:00", "维护"], "已经过去"),
    (["status", "set", "--until", "later", "维护"], "无法识别"),
    (["status", "clear", "99"], "没有编号为 99 的公告"),
    (["status", "clear", "abc"], "公告编号必须是数字"),
])
def test_cli_bad_input_exits_2_with_the_reason_on_stderr(handoff_db, capsys, argv, expected):
    assert cli(argv) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and captured.out == ""


def test_cli_entry_point_missing_until_exits_2(handoff_db):
    run = subprocess.run([sys.executable, "-m", "bot", "status", "set", "维护"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--until" in run.stderr


# --- the FAQ action -------------------------------------------------------------------------------

def answer(dispatcher, text, intent):
    asyncio.run(ActionAnswerFaq().run(dispatcher, make_tracker(text, intent), {}))
    return [m["text"] for m in dispatcher.messages]


def test_notice_comes_first_then_the_answer(dispatcher, handoff_db):
    notice_store().set("payment_failure", "支付通道维护中，部分银行卡暂时无法付款", until="+2h")
    texts = answer(dispatcher, "付款一直失败", "payment_failure")
    assert texts[0].startswith("【服务公告】支付通道维护中，部分银行卡暂时无法付款（预计 ")
    assert texts[0].endswith(" 恢复）")
    assert texts[1] == faq().fill(faq().topics["payment_failure"].answer)
    assert texts[-1] == "这个回答解决您的问题了吗？"


def test_a_topic_notice_is_not_shown_for_other_topics(dispatcher, handoff_db):
    notice_store().set("payment_failure", "支付通道维护中", until="+2h")
    texts = answer(dispatcher, "退款多久到", "refund")
    assert not any("服务公告" in t for t in texts)


def test_service_status_without_notices_says_all_is_normal_then_the_guidance(dispatcher, handoff_db):
    texts = answer(dispatcher, "是不是系统出问题了", "service_status")
    assert "运行正常" in texts[0] and "钱包小助手" in texts[0]
    assert texts[1] in topic_answers(faq(), "service_status")


def test_service_status_lists_every_active_notice(dispatcher, handoff_db):
    notice_store().set("refund", "退款到账延迟约 2 小时", until="+2h")
    notice_store().set(None, "今晚系统升级", until="+1h")
    texts = answer(dispatcher, "是不是系统出问题了", "service_status")
    assert texts[0].startswith("【服务公告】退款到账延迟约 2 小时") and texts[1].startswith("【服务公告】今晚系统升级")
    assert not any("运行正常" in t for t in texts)
    assert texts[2] in topic_answers(faq(), "service_status")


def test_fraud_safety_steps_stay_first(dispatcher, handoff_db):
    notice_store().set(None, "今晚系统升级", until="+1h")
    texts = answer(dispatcher, "有人让我转账到安全账户", "report_fraud")
    assert texts[0] == faq().fill(faq().topics["report_fraud"].urgent)
    assert any(t.startswith("【服务公告】今晚系统升级") for t in texts)
    assert any("工单号" in t for t in texts)


def test_an_older_faq_file_without_the_notice_texts_still_works(handoff_db, sqlite_url):
    old = dataclasses.replace(faq(), messages={k: v for k, v in faq().messages.items()
                                               if k not in ("notice_banner", "status_normal")})
    store = NoticeStore(sqlite_url, tz="Asia/Shanghai")
    assert "运行正常" in messages_before_answer(old, "service_status", store)[0]["text"]
    store.set(None, "维护中", until="+1h")
    assert messages_before_answer(old, "login_failure", store)[0]["text"].startswith("【服务公告】维护中（预计 ")


def test_unreadable_notices_never_block_the_answer(dispatcher, monkeypatch, tmp_path):
    from bot.config import reload_settings

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("WALLET_DB_URL", f"sqlite:///{blocker}/wallet.db")
    reload_settings()
    try:
        texts = answer(dispatcher, "是不是系统出问题了", "service_status")
    finally:
        reload_settings()
    assert texts[0] in topic_answers(faq(), "service_status")  # no false "all is normal"


# --- console API (the console process on its own) ------------------------------------------------

PASSWORD = "notice-pass-1"


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("notice-console")
    db_url = f"sqlite:///{workdir / 'wallet.db'}"
    AgentStore(db_url).add("组长", PASSWORD)
    with running_console(workdir, {"WALLET_DB_URL": db_url, "PYTHONWARNINGS": "ignore"}, timeout=120) as url:
        yield {"url": url, "db_url": db_url}


def bearer(console):
    r = requests.post(f"{console['url']}/api/login", json={"name": "组长", "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.server
def test_console_notice_api_needs_a_session(console):
    for method, path in [("GET", "/api/notices"), ("POST", "/api/notices"), ("DELETE", "/api/notices/1")]:
        assert requests.request(method, console["url"] + path, timeout=10).status_code == 401


@pytest.mark.server
def test_console_publish_list_clear(console):
    headers = bearer(console)
    url = console["url"] + "/api/notices"
    r = requests.post(url, headers=headers, json={"topic": "refund", "text": "退款到账延迟约 2 小时", "until": "+2h"}, timeout=10)
    assert r.status_code == 201, r.text
    notice = r.json()["notice"]
    assert notice["topic"] == "refund" and notice["status"] == "active" and notice["created_by"] == "组长"
    listing = requests.get(url, headers=headers, timeout=10).json()
    assert [n["id"] for n in listing["notices"]] == [notice["id"]]
    assert listing["timezone"] == "北京时间"
    assert {"name": "refund", "title": "退款问题"} in listing["topics"]
    assert requests.delete(f"{url}/{notice['id']}", headers=headers, timeout=10).json()["cleared"][0]["cleared_by"] == "组长"
    assert requests.get(url, headers=headers, timeout=10).json()["notices"] == []
    assert requests.get(url + "?all=1", headers=headers, timeout=10).json()["notices"][0]["status"] == "cleared"
    again = requests.delete(f"{url}/{notice['id']}", headers=headers, timeout=10)
    assert again.status_code == 409 and "撤下" in again.json()["error"]
    assert requests.delete(f"{url}/99999", headers=headers, timeout=10).status_code == 404
    actions = [a["action"] for a in TicketStore(console["db_url"]).audit_log()]
    assert "notice_set" in actions and "notice_clear" in actions


@pytest.mark.server
@pytest.mark.parametrize("payload, expected", [
    ({"topic": "nope", "text": "维护", "until": "+1h"}, "未知话题"),
    ({"topic": "all", "text": "", "until": "+1h"}, "不能为空"),
    ({"topic": "all", "text": "维护", "until": "2020-01-01 00:00"}, "已经过去"),
    ({"topic": "all", "text": "维护", "until": 5}, "until 必须是字符串"),
    ({"topic": "all", "text": ["维护"], "until": "+1h"}, "必须是文字"),
    ({"topic": "all", "text": "维护"}, "请填写结束时间"),
    ([1, 2], "JSON 对象"),
])
def test_console_bad_input_is_400_with_the_reason(console, payload, expected):
    r = requests.post(console["url"] + "/api/notices", headers=bearer(console), json=payload, timeout=10)
    assert r.status_code == 400 and expected in r.json()["error"]


@pytest.mark.server
def test_console_cookie_session_needs_the_csrf_token(console):
    session = requests.Session()
    login = session.post(f"{console['url']}/api/login", json={"name": "组长", "password": PASSWORD}, timeout=10)
    body = {"topic": "all", "text": "维护中", "until": "+1h"}
    assert session.post(console["url"] + "/api/notices", json=body, timeout=10).status_code == 403
    r = session.post(console["url"] + "/api/notices", json=body, headers={"X-CSRF-Token": login.json()["csrf"]}, timeout=10)
    assert r.status_code == 201
    assert session.delete(f"{console['url']}/api/notices/{r.json()['notice']['id']}", timeout=10).status_code == 403
    assert session.delete(f"{console['url']}/api/notices/{r.json()['notice']['id']}",
                          headers={"X-CSRF-Token": login.json()["csrf"]}, timeout=10).status_code == 200


@pytest.mark.server
def test_console_serves_the_notice_panel(console):
    page = requests.get(console["url"], timeout=10).text
    assert "服务公告" in page and "/static/notices.js" in page
    script = requests.get(console["url"] + "/static/notices.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
