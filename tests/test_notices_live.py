"""Service notices with the real servers: the widget's public endpoint, a REST chat that gets
the notice before the answer, and the banner in the widget (headless Chromium)."""
import time

import pytest
import requests

from bot.notices.store import CACHE_SECONDS, NoticeStore
from tests.browser import chromium
from tests.conftest import ROOT, require_model
from tests.servers import running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model]
REPORTS = ROOT / "reports"
NOTICE = "系统升级中，部分功能可能短暂不可用"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_model()
    with running_assistant(tmp_path_factory.mktemp("notices")) as urls:
        store = NoticeStore(urls["db_url"])
        store.set(None, NOTICE, until="+2h", author="组长")  # before Rasa's first read: no cache to wait for
        urls["store"] = store
        yield urls


def public(env):
    r = requests.get(f"{env['rasa']}/webhooks/socketio/notices", timeout=10)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    return r.json()["notices"]


def test_public_endpoint_shows_only_topic_text_and_until(env):
    (notice,) = public(env)
    assert set(notice) == {"topic", "text", "until"}
    assert notice["topic"] is None and notice["text"] == NOTICE and notice["until"].endswith("+08:00")
    assert requests.post(f"{env['rasa']}/webhooks/socketio/notices", timeout=10).status_code in (404, 405)


def test_rest_user_gets_the_notice_before_the_answer(env):
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook",
                      json={"sender": "notice-user-1", "message": "退款到银行卡一般要多久"}, timeout=60)
    texts = [m.get("text", "") for m in r.json()]
    assert texts[0].startswith(f"【服务公告】{NOTICE}（预计 ") and "工作日" in texts[1]
    assert texts[-1] == "这个回答解决您的问题了吗？"


@pytest.mark.browser
def test_widget_shows_the_banner_and_hides_it_when_cleared(env):
    REPORTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 360, "height": 640}, locale="zh-CN", is_mobile=True).new_page()
        page.goto(f"{env['rasa']}/webhooks/socketio/demo")
        assert page.is_hidden("#wallet-chat .wc-notice")
        page.click("#wallet-chat .wc-launcher")
        page.wait_for_selector("#wallet-chat .wc-notice:not([hidden])", timeout=15000)
        banner = page.inner_text("#wallet-chat .wc-notice")
        assert banner.startswith(f"【服务公告】{NOTICE}（预计 ") and banner.endswith("恢复）")
        page.screenshot(path=str(REPORTS / "widget_notice_phone.png"))

        env["store"].clear(author="组长")
        time.sleep(CACHE_SECONDS + 1)  # the Rasa process re-reads notices after its cache TTL
        page.click("#wallet-chat .wc-close")
        page.click("#wallet-chat .wc-launcher")  # opening fetches again
        page.wait_for_selector("#wallet-chat .wc-notice", state="hidden", timeout=15000)
        assert public(env) == []


@pytest.mark.browser
def test_console_panel_publishes_and_clears(env):
    from bot.handoff.agents import AgentStore

    AgentStore(env["db_url"]).add("值班组长", "notice-pass-1")
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN").new_page()
        page.goto(env["console"])
        page.fill("#login-name", "值班组长")
        page.fill("#login-password", "notice-pass-1")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#notice-topic option[value=payment_failure]", state="attached")  # form folded
        assert page.is_visible("#notice-empty")
        page.click("#notice-new summary")
        page.select_option("#notice-topic", "payment_failure")
        page.fill("#notice-until", "+1h")
        page.fill("#notice-text", "支付通道维护中，部分银行卡暂时无法付款")
        page.click("#notice-form button[type=submit]")
        item = page.wait_for_selector("#notice-list li.active")
        assert "支付通道维护中" in item.inner_text() and "生效中" in item.inner_text()
        (stored,) = env["store"].list()
        assert (stored.topic, stored.created_by) == ("payment_failure", "值班组长")
        page.screenshot(path=str(REPORTS / "console_notices.png"))

        page.click("#notice-new summary")
        page.fill("#notice-until", "昨天")
        page.fill("#notice-text", "无效的时间")
        page.click("#notice-form button[type=submit]")
        page.wait_for_function("document.getElementById('notice-error').textContent.includes('无法识别')")

        page.click("#notice-list li.active .notice-clear")
        page.wait_for_selector("#notice-empty:not([hidden])")
        assert env["store"].list() == []
