"""The in-app chat widget in a real headless Chromium: ask, get the FAQ answer, click a
follow-up, reload and keep the history, get handed off and receive the agent's reply live.
Screenshots at phone (360×640) and desktop size go to reports/."""
import pytest

from bot.handoff.store import TicketStore
from tests.browser import chromium
from tests.conftest import ROOT, require_model
from tests.servers import ConsoleAgent, running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model, pytest.mark.browser]
REPORTS = ROOT / "reports"


def bot_texts(page):
    return page.eval_on_selector_all("#wallet-chat .wc-bot .wc-bubble", "els => els.map(e => e.innerText)")


def wait_bot_count(page, n, timeout=30000):
    page.wait_for_function(f"document.querySelectorAll('#wallet-chat .wc-bot').length >= {n}", timeout=timeout)


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_widget_end_to_end(tmp_path, size):
    require_model()
    REPORTS.mkdir(exist_ok=True)
    viewport = {"width": 360, "height": 640} if size == "phone" else {"width": 1280, "height": 800}
    with chromium() as browser, running_assistant(tmp_path) as urls:
        context = browser.new_context(viewport=viewport, locale="zh-CN", is_mobile=size == "phone")
        page = context.new_page()
        page.goto(f"{urls['rasa']}/webhooks/socketio/demo")
        page.click("#wallet-chat .wc-launcher")
        page.wait_for_selector("#wallet-chat[data-session]")
        assert "钱包小助手" in bot_texts(page)[0]

        # The answer can come back within milliseconds: record the typing indicator appearing
        # instead of racing to see it.
        page.evaluate("""() => { const t = document.querySelector('#wallet-chat .wc-typing');
            window.__typingShown = false;
            new MutationObserver(() => { if (!t.hidden) window.__typingShown = true; })
                .observe(t, {attributes: true, attributeFilter: ['hidden']}); }""")
        page.fill("#wallet-chat .wc-input", "退款到银行卡一般要多久")
        page.keyboard.press("Enter")
        wait_bot_count(page, 3)
        assert page.evaluate("window.__typingShown"), "the typing indicator showed while the answer was on its way"
        assert page.is_hidden("#wallet-chat .wc-typing"), "and is gone once the answer is there"
        texts = bot_texts(page)
        assert any("工作日" in t for t in texts) and texts[-1] == "这个回答解决您的问题了吗？"
        # every button of the answer rides on its last message (bot/channels/socketio_output.py):
        # 是/否 first, then the follow-up topics
        last = page.query_selector_all("#wallet-chat .wc-msg:last-child .wc-button:not([disabled])")
        assert [b.inner_text() for b in last[:2]] == ["是", "否"]
        follow_up = [b for b in last[2:] if b.inner_text() != "转人工"]
        assert follow_up, "the FAQ answer offers follow-up topics"
        assert not page.query_selector_all("#wallet-chat .wc-msg:nth-last-child(2) .wc-button")
        count = len(bot_texts(page))
        follow_up[0].click()
        wait_bot_count(page, count + 2)
        page.screenshot(path=str(REPORTS / f"widget_{size}_answer.png"))

        before = len(bot_texts(page))
        session = page.get_attribute("#wallet-chat", "data-session")
        page.reload()
        page.wait_for_selector("#wallet-chat[data-session]")
        assert page.get_attribute("#wallet-chat", "data-session") == session
        assert len(bot_texts(page)) == before  # history kept after reload

        page.fill("#wallet-chat .wc-input", "我要转人工")
        page.keyboard.press("Enter")
        page.wait_for_function("[...document.querySelectorAll('#wallet-chat .wc-bot')].some(e => e.innerText.includes('工单号'))", timeout=30000)
        ticket = TicketStore(urls["db_url"]).active_ticket(session)
        assert ticket and ticket["channel"] == "socketio"

        agent = ConsoleAgent(urls)
        agent.take(ticket["number"], "您好，我是人工客服，马上为您处理")
        page.wait_for_selector("#wallet-chat .wc-agent", timeout=15000)  # pushed live, no reload
        assert "马上为您处理" in page.inner_text("#wallet-chat .wc-agent")
        assert "人工客服" in page.inner_text("#wallet-chat .wc-agent .wc-badge")
        page.screenshot(path=str(REPORTS / f"widget_{size}_agent.png"))

        assert agent.post(ticket["number"], "close", note="已处理").ok
        page.wait_for_function("[...document.querySelectorAll('#wallet-chat .wc-button')].some(b => b.innerText === '5 分' && !b.disabled)", timeout=15000)
        page.click("#wallet-chat .wc-button:has-text('5 分')")
        page.wait_for_function("[...document.querySelectorAll('#wallet-chat .wc-bot')].some(e => e.innerText.includes('感谢您的评价'))", timeout=15000)
        assert TicketStore(urls["db_url"]).get(ticket["number"])["rating"] == 5
        page.screenshot(path=str(REPORTS / f"widget_{size}_rating.png"))
