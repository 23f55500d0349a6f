"""Adding a user's wording to a specific FAQ question from the console's FAQ 改进 page: the
question list, the closest question on each gap row, POST /api/faq/phrasings (served at the FAQ's
next hot reload, no retraining), rollback, and bad input as a 4xx with a Chinese reason.

The server tests run a real console (`python -m bot console`, tests/servers.py) on a TEMP COPY of
the project's data (the real data/faq.yml is never touched) and a tracker store holding two gaps.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import time

import pytest
import requests

from bot.authoring.changes import FAQ_FILE
from bot.console.faq_routes import with_suggestions
from bot.faq.match import pick_question
from bot.faq.model import load_faq
from bot.handoff.agents import AgentStore
from tests.browser import chromium
from tests.conftest import ROOT
from tests.servers import running_console

PASSWORD = "phrasing-pass-1"
REPORTS = ROOT / "reports"
SURROGATE = '"\\ud800"'  # JSON text of a lone surrogate
CHINESE = re.compile(r"[\u4e00-\u9fff]")
# Our own wordings, written for these tests (not from ../shared/eval).
ASKED = "提现到银行卡要等多久才能到账"  # a gap whose closest specific question is withdrawal.arrival_time
UNRELATED = "帮我订一张去上海的机票"  # a gap close to no question of ours
WORDING = "提到卡里的钱一般要等多长时间才能看到"  # added as a phrasing of withdrawal.arrival_time


# --- the closest question of a gap row, without a server ------------------------------------------

def test_each_gap_row_gets_its_closest_question_or_none():
    faq = load_faq(ROOT / FAQ_FILE)
    rows = [{"id": "a", "example": ASKED, "topic": "withdrawal", "count": 2},
            {"id": "b", "example": UNRELATED, "topic": None, "count": 1}]
    got = with_suggestions([dict(r) for r in rows], faq)
    assert got[0]["suggested_question"] == {"id": "withdrawal.arrival_time", "topic": "withdrawal",
                                            "question": faq.question("withdrawal.arrival_time").question}
    assert got[1]["suggested_question"] is None
    assert [{k: v for k, v in r.items() if k != "suggested_question"} for r in got] == rows  # fields kept
    assert [r["suggested_question"] for r in with_suggestions([dict(r) for r in rows], None)] == [None, None]


# --- against a real console server ----------------------------------------------------------------

def _store_gaps(path, texts):
    """Conversations the assistant did not understand (nlu_fallback), an hour ago, in Rasa's SQL
    tracker store: the rows the gap list reads in production."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(dialect="sqlite", db=str(path))
    t = time.time() - 3600
    for i, text in enumerate(texts):
        parse = {"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.6}, "entities": [],
                 "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.6}]}
        events = [UserUttered(text, parse_data=parse, intent=parse["intent"], input_channel="rest", timestamp=t + i),
                  ActionExecuted("action_not_understood", timestamp=t + i + 0.1),
                  ActionExecuted("action_listen", timestamp=t + i + 0.2)]
        asyncio.run(store.save(DialogueStateTracker.from_events(f"gap-{i}", events)))
    store.engine.dispose()
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("console-phrasings")
    project = workdir / "project"  # phrasings are written into the project: a copy, never ours
    shutil.copytree(ROOT / "data", project / "data")
    for name in ("domain.yml", "assistant.yml", "config.yml"):
        shutil.copy2(ROOT / name, project / name)
    db_url = f"sqlite:///{workdir / 'wallet.db'}"
    AgentStore(db_url).add("组长", PASSWORD)
    env = {"WALLET_DB_URL": db_url, "PYTHONWARNINGS": "ignore", "WALLET_PROJECT_ROOT": str(project),
           "WALLET_FAQ": str(project / FAQ_FILE),
           "WALLET_TRACKER_DB_URL": _store_gaps(workdir / "tracker.db", [ASKED, UNRELATED])}
    with running_console(workdir, env, timeout=120) as url:
        yield {"url": url, "faq": project / FAQ_FILE}


def bearer(console):
    r = requests.post(f"{console['url']}/api/login", json={"name": "组长", "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def refused(r, status):
    """A clean refusal: the status, a Chinese reason, no stack trace."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert CHINESE.search(r.json()["error"]) and "Traceback" not in r.text
    return r.json()["error"]


@pytest.mark.server
def test_the_questions_of_each_topic_are_listed(console):
    url = f"{console['url']}/api/faq/questions"
    assert requests.get(url, timeout=10).status_code == 401
    r = requests.get(url, headers=bearer(console), timeout=10)
    assert r.status_code == 200, r.text
    faq = load_faq(console["faq"])
    expected = [{"name": t.name, "title": t.title, "questions": [{"id": q.id, "question": q.question} for q in t.questions]}
                for t in faq.topics.values() if t.questions]
    assert r.json()["topics"] == expected and len(expected) >= 10


@pytest.mark.server
def test_gap_rows_carry_the_closest_specific_question(console):
    r = requests.get(f"{console['url']}/api/faq/gaps?days=7", headers=bearer(console), timeout=120)
    assert r.status_code == 200, r.text
    rows = {g["example"]: g for g in r.json()["gaps"]}
    assert set(rows) == {ASKED, UNRELATED}
    asked = rows[ASKED]
    assert {"id", "count", "example", "topic", "texts", "reasons", "topics", "conversations"} <= set(asked)
    assert asked["suggested_question"]["id"] == "withdrawal.arrival_time"
    assert asked["suggested_question"]["question"] == load_faq(console["faq"]).question("withdrawal.arrival_time").question
    assert rows[UNRELATED]["suggested_question"] is None


@pytest.mark.server
def test_a_phrasing_added_in_the_console_is_served_and_can_be_rolled_back(console):
    base, faq_file = console["url"], console["faq"]
    before = faq_file.read_text(encoding="utf-8")
    session = requests.Session()  # the page's way: session cookie + CSRF header
    login = session.post(f"{base}/api/login", json={"name": "组长", "password": PASSWORD}, timeout=10)
    csrf = {"X-CSRF-Token": login.json()["csrf"]}
    body = {"question_id": "withdrawal.arrival_time", "text": WORDING}
    assert session.post(f"{base}/api/faq/phrasings", json=body, timeout=30).status_code == 403  # no CSRF token
    assert faq_file.read_text(encoding="utf-8") == before

    r = session.post(f"{base}/api/faq/phrasings", json=body, headers=csrf, timeout=30)
    assert r.status_code == 200, r.text
    change = r.json()["change"]
    assert change["action"] == "add_phrasing" and change["author"] == "组长" and WORDING in change["summary"]
    faq = load_faq(faq_file)
    assert faq.question("withdrawal.arrival_time").phrasings[-1] == WORDING
    assert faq.question("withdrawal.arrival_time").question in change["summary"]  # the history names it
    picked, _ = pick_question(faq, "withdrawal", WORDING)
    assert picked is not None and picked.id == "withdrawal.arrival_time"
    history = session.get(f"{base}/api/faq/changes", timeout=10).json()["changes"]
    assert history[0]["id"] == change["id"] and history[0]["rolled_back_by"] is None

    again = session.post(f"{base}/api/faq/phrasings", json=body, headers=csrf, timeout=30)
    assert "已经有这个问法" in refused(again, 409)

    undo = session.post(f"{base}/api/faq/changes/{change['id']}/rollback", json={}, headers=csrf, timeout=30)
    assert undo.status_code == 200, undo.text
    assert faq_file.read_text(encoding="utf-8") == before
    assert WORDING not in load_faq(faq_file).question("withdrawal.arrival_time").phrasings
    history = session.get(f"{base}/api/faq/changes", timeout=10).json()["changes"]
    assert history[0]["action"] == "rollback" and history[1]["rolled_back_by"] == history[0]["id"]
    assert "已经被" in refused(session.post(f"{base}/api/faq/changes/{change['id']}/rollback", json={},
                                            headers=csrf, timeout=30), 409)


def _body(payload) -> bytes:
    return (payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)).encode("utf-8")


QID = "withdrawal.arrival_time"
TAKEN = load_faq(ROOT / FAQ_FILE).question("top_up.not_credited").phrasings[0]  # another question's wording


@pytest.mark.server
@pytest.mark.parametrize("payload, status, expected", [
    ({"question_id": "withdrawal.no_such_question", "text": "提现要多久"}, 404, "没有这个具体问题"),
    ({"question_id": "no_such_topic.x", "text": "提现要多久"}, 404, "没有这个具体问题"),
    ({"question_id": QID, "text": "   "}, 400, "不能为空"),
    ({"question_id": QID, "text": ""}, 400, "不能为空"),
    ({"question_id": QID, "text": TAKEN}, 409, "已属于问题"),
    ('{"question_id": "withdrawal.arrival_time", "text": ' + SURROGATE + "}", 400, "字符"),
    ('{"question_id": ' + SURROGATE + ', "text": "提现要多久"}', 400, "字符"),
    ({"question_id": 5, "text": "提现要多久"}, 400, "必须是字符串"),
    ({"question_id": QID}, 400, "必须是字符串"),
    ({"question_id": QID, "text": "提" * 201}, 400, "太长"),
    ([1, 2], 400, "JSON 对象"),
])
def test_bad_phrasings_are_refused_with_a_chinese_reason(console, payload, status, expected):
    before = console["faq"].read_text(encoding="utf-8")
    headers = {**bearer(console), "Content-Type": "application/json"}
    r = requests.post(f"{console['url']}/api/faq/phrasings", data=_body(payload), headers=headers, timeout=30)
    assert expected in refused(r, status)
    assert console["faq"].read_text(encoding="utf-8") == before


@pytest.mark.server
@pytest.mark.browser
def test_the_faq_page_adds_a_gap_as_a_phrasing_and_rolls_it_back(console):
    """The page in headless Chromium: the closest question is preselected on its gap row, a row
    without one asks the lead to choose, the phrasing is added and confirmed, then rolled back
    from the change list."""
    from playwright.sync_api import expect

    before = console["faq"].read_text(encoding="utf-8")
    question = load_faq(console["faq"]).question(QID).question
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        page.goto(console["url"])
        page.fill("#login-name", "组长")
        page.fill("#login-password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#app-view:not([hidden])")
        page.click("#faq-loop-panel > summary")
        row = page.locator("#gap-list li", has_text=ASKED)
        row.wait_for(timeout=120_000)  # the first gap list builds the question index
        expect(row.locator("select.gap-question")).to_have_value(QID)
        expect(row.locator("select").first).to_have_value("withdrawal")  # no guess: the closest question's topic
        expect(row).to_contain_text(f"最接近的问题：{question}")
        other = page.locator("#gap-list li", has_text=UNRELATED)
        expect(other.locator("select.gap-question")).to_have_value("")
        other.get_by_role("button", name="加为该问题的问法").click()
        expect(page.locator("#faq-loop-error")).to_have_text("请先选择具体问题")
        assert console["faq"].read_text(encoding="utf-8") == before

        row.get_by_role("button", name="加为该问题的问法").click()
        expect(page.locator("#faq-loop-ok")).to_contain_text(f"已加入问题「{question}」的问法，无需重新训练即可生效",
                                                             timeout=30_000)
        assert load_faq(console["faq"]).question(QID).phrasings[-1] == ASKED
        newest = page.locator("#change-body tr").first
        expect(newest).to_contain_text(ASKED, timeout=30_000)
        REPORTS.mkdir(exist_ok=True)
        page.screenshot(path=str(REPORTS / "console_faq_phrasing.png"), full_page=True)

        newest.get_by_role("button", name="回滚").click()
        expect(page.locator("#faq-loop-ok")).to_contain_text("已回滚", timeout=30_000)
        expect(page.locator("#change-body tr").nth(1)).to_contain_text("已被", timeout=30_000)
        assert console["faq"].read_text(encoding="utf-8") == before
