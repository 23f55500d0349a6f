"""Issue 16, round two, the agent console: each attack of findings 6 and 7 replayed against a real
console server (`python -m bot console`, tests/servers.py), and the pieces that stop it.

Finding 6: agent names could be enumerated (a wrong password took ~500 ms for a real name and
~18 ms for an unknown one; a lone-surrogate password gave 500 for a real name, 401 for an unknown
one, and skipped the throttle). Finding 7 (console parts): `Authorization: Basic …` skipped the
CSRF check, the live queue stream outlived logout, lone surrogates and year-1/year-9999 dates
gave 500s, and notices could link to look-alike phishing domains.
"""
from __future__ import annotations

import shutil
import statistics
import threading
import time
import uuid
from datetime import date, datetime

import pytest
import requests
from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.console.app import SESSION_CHECK_SECONDS
from bot.console.bodies import BodyError, json_object
from bot.db.engine import engine_for
from bot.db.models import Agent
from bot.faq.check import check_project
from bot.faq.drafts import draft_problems
from bot.handoff.agents import BCRYPT_ROUNDS, AgentStore, _dummy_hash
from bot.handoff.store import TicketStore
from bot.insights.period import PeriodError, period
from bot.notices.store import NoticeError, clean_text
from bot.notices.timing import NoticeTimeError, parse_when
from bot.security.login_throttle import LoginThrottle
from bot.security.scam import lookalike_links, scam_signals
from tests.conftest import ROOT
from tests.servers import running_console

PASSWORD = "console-pass-1"
SURROGATE = '"\\ud800"'  # JSON text of a lone surrogate


# --- the pieces, without a server ------------------------------------------------------------

def test_unknown_names_are_checked_against_a_hash_of_the_real_cost(sqlite_url):
    agents = AgentStore(sqlite_url)
    agents.add("real", PASSWORD)
    with Session(engine_for(sqlite_url)) as s:
        real = s.query(Agent).filter_by(name="real").one().password_hash
    assert real.startswith(f"$2b${BCRYPT_ROUNDS}$") and _dummy_hash().startswith(f"$2b${BCRYPT_ROUNDS}$".encode())
    assert _dummy_hash() is _dummy_hash()  # made once per process
    assert agents.verify("real", PASSWORD)["name"] == "real"
    for name, password in [("real", "\ud800"), ("nobody", "\ud800"), ("a\x00b", PASSWORD), ("\udfff", PASSWORD),
                           ("real", None), ("real", "é" * 300)]:
        assert agents.verify(name, password) is None  # never raises
    assert agents.by_name("\ud800") is None


def test_an_attempt_counts_before_it_is_checked_and_only_success_takes_it_back():
    clock = [0.0]
    throttle = LoginThrottle(max_failures=3, window=60, clock=lambda: clock[0])
    keys = ("name:a", "addr:198.51.100.1")
    for _ in range(3):
        wait, stamp = throttle.attempt(keys)
        assert wait == 0 and stamp is not None  # counted already, whatever happens next
        clock[0] += 1
    wait, stamp = throttle.attempt(keys)
    assert wait > 0 and stamp is None
    clock[0] += 61
    wait, stamp = throttle.attempt(("name:b", "addr:198.51.100.1"))
    throttle.succeeded("name:b", stamp, ("addr:198.51.100.1",))
    for _ in range(2):  # the address's successful sign-in no longer counts against it
        assert throttle.attempt(("name:c", "addr:198.51.100.1"))[0] == 0
    assert throttle.blocked_for(("addr:198.51.100.1",)) == 0


def test_a_burst_of_parallel_guesses_cannot_pass_the_throttle_together():
    throttle = LoginThrottle(max_failures=5, window=60)
    barrier, results = threading.Barrier(50), []

    def guess():
        barrier.wait()
        results.append(throttle.attempt(("name:target",))[0] == 0)

    threads = [threading.Thread(target=guess) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 5


@pytest.mark.parametrize("raw", [
    b"{", b"[]", b'"x"', b"null", b"\xff", b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00",
    ('{"text": ' + SURROGATE + "}").encode(), b'{"text": "a\\u0000b"}', ('{"\\udc00": 1}').encode(),
    ('{"a": [{"b": ["x", ' + SURROGATE + "]}]}").encode(), b"[" * 100_000 + b"]" * 100_000,
])
def test_console_bodies_refuse_what_cannot_be_stored(raw):
    with pytest.raises(BodyError) as refused:
        json_object(raw)
    assert refused.value.status == 400


def test_console_bodies_keep_real_text():
    assert json_object('{"text": "退款 \\ud83d\\ude00 ok"}'.encode()) == {"text": "退款 😀 ok"}
    assert json_object(b"") == {}


@pytest.mark.parametrize("since, until", [("0001-01-01", "9999-12-31"), ("1999-12-31", None),
                                          ("2026-01-01", "2101-01-01"), ("2020-01-01T00:00-23:59", "9999-12-31T23:59-23:00")])
def test_dashboard_windows_outside_2000_to_2100_are_refused(since, until):
    with pytest.raises(PeriodError, match="超出范围|2000-01-01"):
        period(None, since, until)


@pytest.mark.parametrize("text", ["0001-01-01 00:00", "9999-12-31T23:00-10:00", "2101-01-01", "+9999999999d",
                                  "+" + "9" * 5000 + "d", "1999-12-31 23:59"])
def test_notice_times_outside_the_range_are_refused(text):
    with pytest.raises(NoticeTimeError):
        parse_when(text, datetime(2026, 11, 10, 12, 0), __import__("zoneinfo").ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize("text", [
    "请到 https://alipay-secure.com/verify 验证身份", "访问 a1ipay.com 领取补偿", "点击 ａｌｉｐａｙ－ｓｅｃｕｒｅ．ｃｏｍ",
    "官网 alipay\u200b-secure.com", "http://xn--alpay-9ta.com", "alipay.com.verify-center.cn 退款通道",
])
def test_look_alike_links_in_staff_text_are_refused(text):
    host = lookalike_links(text)[0]
    with pytest.raises(NoticeError, match=host.replace(".", r"\.")):
        clean_text(text)
    assert any(p.endswith("像是仿冒官方的域名：请只使用官方域名") for p in draft_problems(
        "new_topic", {"title": "新话题", "answer": text, "examples": ["新问题"]}, set(), {}))
    assert f"link:{host}" in scam_signals(text.lower())  # the same check as the scam guard


def test_official_links_are_fine_in_staff_text():
    assert clean_text("请在 https://www.alipay.com/help 查看进度") == "请在 https://www.alipay.com/help 查看进度"
    assert lookalike_links("淘宝 www.taobao.com 付款失败，help.alipay.com 可查") == []


def test_make_check_fails_on_an_faq_answer_with_a_look_alike_link(tmp_path):
    for part in ("domain.yml", "data"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / part)
    faq = tmp_path / "data/faq.yml"
    text = faq.read_text(encoding="utf-8")
    assert "以上都试过仍登录不了，可以点「转人工」。" in text
    faq.write_text(text.replace("以上都试过仍登录不了，可以点「转人工」。",
                                "以上都试过仍登录不了，请到 https://alipay-secure.com/verify 验证。"), encoding="utf-8")
    problems = check_project(tmp_path, faq)
    assert any("login_failure" in p and "look-alike domain 'alipay-secure.com'" in p for p in problems), problems


# --- against a real console server ------------------------------------------------------------

@pytest.fixture(scope="module")
def console(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("console-trust")
    project = workdir / "project"  # FAQ drafts are written into the project: a copy, never ours
    shutil.copytree(ROOT / "data", project / "data")
    for name in ("domain.yml", "assistant.yml"):
        shutil.copy2(ROOT / name, project / name)
    db_url = f"sqlite:///{workdir / 'wallet.db'}"
    agents = AgentStore(db_url)
    for name in ("组长", "timer", "warmup", "csrf", "sse1", "sse2", "sse3"):
        agents.add(name, PASSWORD)
    env = {"WALLET_DB_URL": db_url, "PYTHONWARNINGS": "ignore", "WALLET_PROJECT_ROOT": str(project),
           "WALLET_FAQ": str(project / "data" / "faq.yml")}
    with running_console(workdir, env, timeout=120) as url:
        yield {"url": url, "db_url": db_url, "faq": project / "data" / "faq.yml"}


def login(console, name="组长", **kw):
    return requests.post(f"{console['url']}/api/login", json={"name": name, "password": PASSWORD}, timeout=10, **kw)


def bearer(console, name="组长"):
    r = login(console, name)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def no_stack_trace(r):
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text


@pytest.mark.server
def test_a_wrong_password_takes_as_long_for_an_unknown_name(console):
    """Finding 6 (timing): median of 5 wrong-password sign-ins, real name vs unknown name."""
    url = f"{console['url']}/api/login"
    for name in ("warmup", f"nobody-{uuid.uuid4().hex[:6]}"):  # connections, caches, the dummy hash
        requests.post(url, json={"name": name, "password": "wrong-password"}, timeout=10)
    unknown = f"nobody-{uuid.uuid4().hex[:6]}"
    times = {"timer": [], unknown: []}
    answers = set()
    for _ in range(5):  # 5: the throttle allows exactly five failures per name
        for name in times:
            start = time.perf_counter()
            r = requests.post(url, json={"name": name, "password": "wrong-password"}, timeout=10)
            times[name].append(time.perf_counter() - start)
            answers.add((r.status_code, r.text))
    real, fake = statistics.median(times["timer"]), statistics.median(times[unknown])
    print(f"median wrong-password sign-in: real name {real * 1000:.0f} ms, unknown name {fake * 1000:.0f} ms, "
          f"ratio {fake / real:.2f}")
    assert 0.6 <= fake / real <= 1.6
    assert len(answers) == 1 and answers.pop()[0] == 401  # same status, same body


@pytest.mark.server
@pytest.mark.parametrize("password", [SURROGATE, '"\\udfff\\ud800"', '"ok\\u0000"', "5", "null", '["x"]'])
def test_a_malformed_password_is_no_oracle_and_is_counted(console, password):
    """Finding 6 (exact oracle): a lone-surrogate password was 500 for a real name and 401 for an
    unknown one, and was not counted. Now: the same 400 for both, and five of them lock the name."""
    url = f"{console['url']}/api/login"
    name = f"probe-{uuid.uuid4().hex[:6]}"
    AgentStore(console["db_url"]).add(name, PASSWORD)
    answers = []
    for who in (name, f"nobody-{uuid.uuid4().hex[:6]}"):
        r = requests.post(url, data=f'{{"name": "{who}", "password": {password}}}'.encode(), timeout=10)
        answers.append((r.status_code, r.json()["error"]))
    assert answers[0] == answers[1] and answers[0][0] == 400
    for _ in range(4):
        assert requests.post(url, data=f'{{"name": "{name}", "password": {password}}}'.encode(),
                             timeout=10).status_code == 400
    locked = requests.post(url, json={"name": name, "password": PASSWORD}, timeout=10)
    assert locked.status_code == 429 and "分钟后再试" in locked.json()["error"]  # even the right password waits
    actions = [(a["agent"], a["action"]) for a in TicketStore(console["db_url"]).audit_log(500)]
    assert (name, "login_failed") in actions and (name, "login_throttled") in actions


@pytest.mark.server
def test_basic_or_any_other_authorization_no_longer_skips_the_csrf_check(console):
    """Finding 7: with the session cookie, any Authorization header (even Basic) used to skip CSRF."""
    session = requests.Session()
    r = session.post(f"{console['url']}/api/login", json={"name": "csrf", "password": PASSWORD}, timeout=10)
    csrf, token = r.json()["csrf"], r.json()["token"]
    url = f"{console['url']}/api/notices"
    notice = {"topic": "all", "text": "系统维护中，预计很快恢复", "until": "+1h"}
    for scheme in ("Basic Y3NyZjpjc3Jm", "Token abc", "Digest x", "Bearer", "bearer", "Negotiate"):
        r = session.post(url, json=notice, headers={"Authorization": scheme}, timeout=10)
        assert r.status_code in (401, 403) and r.status_code != 201, (scheme, r.status_code)
        if not scheme.lower().startswith("bearer"):
            assert r.status_code == 403 and "CSRF" in r.json()["error"]
    assert session.post(f"{console['url']}/api/logout", headers={"Authorization": "Basic eDp4"},
                        timeout=10).status_code == 403
    ok = session.post(url, json=notice, headers={"Authorization": "Basic eDp4", "X-CSRF-Token": csrf}, timeout=10)
    assert ok.status_code == 201  # the CSRF token is what lets a cookie session change things
    api = requests.post(url, json=notice, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert api.status_code == 201  # an API client with a bearer token needs no CSRF token
    requests.delete(f"{url}/{ok.json()['notice']['id']}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    requests.delete(f"{url}/{api.json()['notice']['id']}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _stream_until_closed(url, headers, opened, ended):
    with requests.get(f"{url}/api/events", headers=headers, stream=True, timeout=(5, 60)) as r:
        assert r.status_code == 200
        events = []
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                events.append(line[7:])
                opened.set()
        ended.append((time.monotonic(), events))


@pytest.mark.server
def test_the_live_queue_stream_ends_with_its_session(console):
    """Finding 7: the SSE stream kept sending after logout. Now it ends within
    SESSION_CHECK_SECONDS when the session is logged out, expires, or its agent is disabled."""
    agents = AgentStore(console["db_url"])
    logged_out = bearer(console, "sse1")
    expiring = {"Authorization": f"Bearer {agents.start_session(agents.by_name('sse2')['id'], ttl_seconds=3)}"}
    disabled = bearer(console, "sse3")
    streams = []
    for headers in (logged_out, expiring, disabled):
        opened, ended = threading.Event(), []
        thread = threading.Thread(target=_stream_until_closed, args=(console["url"], headers, opened, ended), daemon=True)
        thread.start()
        streams.append((thread, opened, ended))
    for _, opened, _ in streams:
        assert opened.wait(10), "the stream sent no first queue event"
    assert requests.post(f"{console['url']}/api/logout", headers=logged_out, timeout=10).status_code == 200
    logout_at = time.monotonic()
    with Session(engine_for(console["db_url"])) as s:
        s.execute(update(Agent).where(Agent.name == "sse3").values(active=False))
        s.commit()
    disabled_at = time.monotonic()
    for thread, _, _ in streams:
        thread.join(SESSION_CHECK_SECONDS + 10)
    ends = [ended[0] if ended else None for _, _, ended in streams]
    assert all(ends), "a stream was still open"
    assert ends[0][0] - logout_at <= SESSION_CHECK_SECONDS + 2 and ends[0][1][-1] == "logout"
    assert ends[1][1][-1] == "logout"  # expired
    assert ends[2][0] - disabled_at <= SESSION_CHECK_SECONDS + 2 and ends[2][1][-1] == "logout"
    assert requests.get(f"{console['url']}/api/events", headers=logged_out, timeout=10).status_code == 401


@pytest.mark.server
@pytest.mark.parametrize("path, body", [
    ("/api/tickets/T-NOPE/reply", '{"text": ' + SURROGATE + "}"),
    ("/api/tickets/T-NOPE/close", '{"note": ' + SURROGATE + "}"),
    ("/api/tickets/T-NOPE/transfer", '{"agent": ' + SURROGATE + "}"),
    ("/api/notices", '{"topic": "all", "text": ' + SURROGATE + ', "until": "+1h"}'),
    ("/api/notices", '{"topic": ' + SURROGATE + ', "text": "维护", "until": "+1h"}'),
    ("/api/notices", '{"text": "维护", "until": ' + SURROGATE + "}"),
    ("/api/faq/examples", '{"topic": "refund", "text": ' + SURROGATE + "}"),
    ("/api/faq/phrasings", '{"question_id": ' + SURROGATE + ', "text": "x"}'),
    ("/api/faq/drafts", '{"name": "abc_def", "title": ' + SURROGATE + ', "answer": "a", "examples": ["b"]}'),
    ("/api/faq/changes/1/rollback", '{"force": ' + SURROGATE + "}"),
    ("/api/faq/retrain", '{"full": ' + SURROGATE + "}"),
])
def test_a_lone_surrogate_anywhere_is_a_clean_400(console, path, body):
    """Finding 7: a lone surrogate in reply, close, transfer or a notice was a 500."""
    r = requests.post(console["url"] + path, data=body.encode(), headers=bearer(console), timeout=10)
    no_stack_trace(r)
    assert r.status_code == 400 and "字符" in r.json()["error"]


@pytest.mark.server
@pytest.mark.parametrize("query", ["since=0001-01-01&until=9999-12-31", "since=1999-12-31", "until=2101-01-01",
                                   "since=2026-01-01&until=9999-12-31T23:59-23:00", "since=%ED%A0%80", "since=%FF",
                                   "since=not-a-date", "days=99999999999999999999999"])
def test_dashboard_dates_out_of_range_are_a_clear_400(console, query):
    """Finding 7: `/api/dashboard?since=0001-01-01&until=9999-12-31` was a 500 (OverflowError)."""
    headers = bearer(console)
    for path in ("/api/dashboard", "/api/dashboard/chart/daily.png", "/api/dashboard/report.html"):
        r = requests.get(f"{console['url']}{path}?{query}", headers=headers, timeout=30)
        no_stack_trace(r)
        assert r.status_code == 400, (path, query, r.status_code)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["error"])  # a Chinese reason


@pytest.mark.server
@pytest.mark.parametrize("until", ["0001-01-01", "9999-12-31 23:00", "9999-12-31T23:00-10:00", "+9999999999d",
                                   "+" + "9" * 5000 + "d", "2101-01-01 00:00"])
def test_notice_times_out_of_range_are_a_clear_400(console, until):
    r = requests.post(f"{console['url']}/api/notices", headers=bearer(console), timeout=10,
                      json={"topic": "all", "text": "系统维护", "until": until})
    no_stack_trace(r)
    assert r.status_code == 400 and "结束时间" in r.json()["error"]


@pytest.mark.server
@pytest.mark.parametrize("text, host", [
    ("支付异常，请到 https://alipay-secure.com/verify 验证", "alipay-secure.com"),
    ("请访问 a1ipay.com 领取补偿", "a1ipay.com"),
    ("点击 ａｌｉｐａｙ－ｓｅｃｕｒｅ．ｃｏｍ 处理", "alipay-secure.com"),
])
def test_a_notice_linking_to_a_look_alike_domain_is_refused(console, text, host):
    """Finding 7: a notice could send every user to a phishing domain."""
    headers = bearer(console)
    faq_before = console["faq"].read_bytes()
    r = requests.post(f"{console['url']}/api/notices", headers=headers, timeout=10,
                      json={"topic": "all", "text": text, "until": "+1h"})
    assert r.status_code == 400 and host in r.json()["error"] and "仿冒" in r.json()["error"]
    listing = requests.get(f"{console['url']}/api/notices", headers=headers, timeout=10).json()["notices"]
    assert all(host not in n["text"] for n in listing)
    draft = requests.post(f"{console['url']}/api/faq/drafts", headers=headers, timeout=30, json={
        "name": f"lookalike_{uuid.uuid4().hex[:6]}", "title": "补偿", "answer": text, "examples": ["怎么领补偿"]})
    assert draft.status_code == 400 and host in draft.json()["error"]
    assert console["faq"].read_bytes() == faq_before  # the draft was not written


@pytest.mark.server
def test_a_notice_with_an_official_link_is_published(console):
    headers = bearer(console)
    r = requests.post(f"{console['url']}/api/notices", headers=headers, timeout=10,
                      json={"topic": "all", "text": "进度可在 https://www.alipay.com/help 查看", "until": "+1h"})
    assert r.status_code == 201, r.text
    requests.delete(f"{console['url']}/api/notices/{r.json()['notice']['id']}", headers=headers, timeout=10)


def test_range_constants_agree():
    from bot.insights import period as insights_period
    from bot.notices import timing

    assert (insights_period.EARLIEST, insights_period.LATEST) == (timing.EARLIEST, timing.LATEST) \
        == (date(2000, 1, 1), date(2100, 12, 31))
