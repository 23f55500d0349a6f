"""The support lead's dashboard on a simulated day of real traffic: a day of conversations runs
through the trained model (bot.devtools.simulation.simulate), the numbers are checked against what happened,
and the console's 看板 and the `make report` page are rendered in headless Chromium
(screenshots: reports/dashboard_console.png, reports/dashboard_report.png)."""
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import requests

from bot.handoff.agents import AgentStore
from bot.insights.analytics import dashboard
from bot.insights.gaps import faq_gaps
from bot.insights.period import local_zone
from tests.browser import chromium
from tests.conftest import ROOT, require_model
from tests.servers import running_console

pytestmark = [pytest.mark.server, pytest.mark.model]
REPORTS = ROOT / "reports"
CONVERSATIONS = 120
PASSWORD = "dashboard-pass"


@pytest.fixture(scope="module")
def day_of_traffic(tmp_path_factory):
    """A simulated yesterday (local time) in fresh databases; the simulator's own summary."""
    require_model()
    work = tmp_path_factory.mktemp("dashboard")
    tz = local_zone()
    day = datetime.now(timezone.utc).astimezone(tz).date() - timedelta(days=1)
    urls = {"tracker": f"sqlite:///{work / 'tracker.db'}", "handoff": f"sqlite:///{work / 'tickets.db'}"}
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "bot", "simulate", "--tracker-db", urls["tracker"], "--handoff-db", urls["handoff"],
         "--day", day.isoformat(), "--conversations", str(CONVERSATIONS), "--seed", "11"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    return {**urls, "work": work, "summary": summary, "since": midnight, "until": midnight + timedelta(days=1)}


def test_simulated_day_is_read_back_by_the_analytics(day_of_traffic):
    d, s = day_of_traffic, day_of_traffic["summary"]
    assert s["conversations"] >= 100 and s["messages"] > 2 * s["conversations"] and s["rate_limited"] == 0
    assert s["seconds"] < 150, "the simulated day must stay fast"
    numbers = dashboard(d["tracker"], d["handoff"], d["since"], d["until"]).as_dict()
    assert numbers["conversations"] == s["conversations"]  # every conversation landed on that day
    # late conversations, ratings and after-hours hand-offs run on into the next day(s)
    wide = dashboard(d["tracker"], None, d["since"], d["until"] + timedelta(days=3)).as_dict()
    assert wide["user_messages"] == s["messages"] and wide["conversations"] == s["conversations"]
    assert sum(numbers["conversations_per_day"][d["since"].date().isoformat()].values()) == s["conversations"]
    assert len(numbers["channels"]) >= 3
    busy_hours = [h for h, n in enumerate(numbers["messages_per_hour"]) if n]
    assert len(busy_hours) >= 12 and numbers["peak_hour"]["messages"] > numbers["user_messages"] / 24
    outcomes = numbers["outcomes"]
    for kind in ("answered", "handed_off", "out_of_scope", "conversation", "to_agent", "relay"):
        assert outcomes[kind] > 0, (kind, outcomes)
    assert len(numbers["top_topics"]) >= 6
    res = numbers["resolution"]
    assert res["resolved"] > 0 and res["not_resolved"] > 0 and 0 < res["rate"] < 1
    assert numbers["handoffs"]["tickets"] == s["tickets"] > 0
    assert numbers["ratings"]["count"] == s["rated"] > 0 and 1 <= numbers["ratings"]["mean"] <= 5
    assert numbers["queue_wait"]["count"] == s["claimed"] and numbers["queue_wait"]["median"] > 0
    assert numbers["handling_time"]["count"] == s["closed"] and numbers["handling_time"]["p90"] >= 150
    # nothing outside the simulated day
    before = dashboard(d["tracker"], d["handoff"], d["since"] - timedelta(days=3), d["since"]).as_dict()
    assert before["conversations"] == 0 and before["handoffs"]["tickets"] == 0

    groups = faq_gaps(d["tracker"], d["since"], d["until"])
    assert groups and [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)
    assert any(len(g.texts) >= 2 for g in groups), [g.texts for g in groups]
    assert not any("13912345678" in t for g in groups for t in g.texts)


def _console(day_of_traffic):
    env = {"WALLET_DB_URL": day_of_traffic["handoff"], "WALLET_TRACKER_DB_URL": day_of_traffic["tracker"],
           "PYTHONWARNINGS": "ignore"}
    return running_console(day_of_traffic["work"], env)


@pytest.mark.browser
def test_console_dashboard_api_and_page(day_of_traffic):
    REPORTS.mkdir(exist_ok=True)
    AgentStore(day_of_traffic["handoff"]).add("组长小赵", PASSWORD)
    with _console(day_of_traffic) as base:
        assert requests.get(f"{base}/api/dashboard", timeout=10).status_code == 401
        assert requests.get(f"{base}/api/dashboard/chart/hourly.png", timeout=10).status_code == 401
        token = requests.post(f"{base}/api/login", json={"name": "组长小赵", "password": PASSWORD}, timeout=10).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        data = requests.get(f"{base}/api/dashboard?days=7", headers=auth, timeout=60).json()
        conversations = day_of_traffic["summary"]["conversations"]
        assert data["analytics"]["conversations"] == conversations and data["gaps"]
        bad = requests.get(f"{base}/api/dashboard?days=abc", headers=auth, timeout=10)
        assert bad.status_code == 400 and "days" in bad.json()["error"]
        assert requests.get(f"{base}/api/dashboard/chart/nope.png", headers=auth, timeout=10).status_code == 404
        png = requests.get(f"{base}/api/dashboard/chart/topics.png?days=7", headers=auth, timeout=60)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"

        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="zh-CN")
            page.goto(base)
            page.fill("#login-name", "组长小赵")
            page.fill("#login-password", PASSWORD)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#app-view:not([hidden])")
            page.click("#dashboard-tab")
            page.wait_for_selector("#dash-cards .dash-card", timeout=60000)
            page.wait_for_function("""() => { const imgs = [...document.querySelectorAll('#dash-charts img')];
                return imgs.length === 6 && imgs.every(i => i.complete && i.naturalWidth > 0); }""", timeout=60000)
            widths = page.eval_on_selector_all("#dash-charts img", "els => els.map(e => e.naturalWidth)")
            assert all(w >= 500 for w in widths), widths
            assert page.is_hidden("#queue")  # the 看板 is a tab of its own
            cards = page.inner_text("#dash-cards")
            assert page.inner_text("[data-card=conversations] .value") == str(conversations), cards
            assert "%" in page.inner_text("[data-card=resolution] .value") and "分" in page.inner_text("[data-card=rating] .value")
            gap_rows = page.eval_on_selector_all("#dash-gaps tr[data-gap]", "els => els.length")
            assert gap_rows == len(data["gaps"]) > 0
            shot = REPORTS / "dashboard_console.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 100_000
            page.click("#dashboard-tab")
            page.wait_for_selector("#queue", state="visible")


@pytest.mark.browser
def test_make_report_page(day_of_traffic, tmp_path):
    from bot.insights.report import main

    out = tmp_path / "dashboard"
    since = day_of_traffic["since"].strftime("%Y-%m-%d")
    assert main(["--since", since, "--until", day_of_traffic["until"].strftime("%Y-%m-%d"),
                 "--tracker-db", day_of_traffic["tracker"], "--handoff-db", day_of_traffic["handoff"],
                 "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"index.html", "dashboard.json", "hourly.png", "topics.png"}
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page.goto((out / "index.html").as_uri())
        widths = page.eval_on_selector_all("figure img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
        assert len(widths) == 6 and all(w >= 500 for w in widths), widths
        assert page.inner_text("#card-conversations .value") == str(day_of_traffic["summary"]["conversations"])
        assert page.eval_on_selector_all("table.gaps tbody tr", "els => els.length") >= 2
        shot = REPORTS / "dashboard_report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 100_000
