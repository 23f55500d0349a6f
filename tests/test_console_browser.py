"""End to end in a real headless Chromium: a user's low-confidence question opens a ticket,
the agent signs in, sees it appear in the live queue, claims it, replies; the user gets the
reply; the agent closes; the user rates and is answered by the assistant again."""
import uuid

import pytest
import requests

from bot.security.tokens import api_headers
from bot.handoff.agents import AgentStore
from bot.handoff.store import TicketStore
from tests.browser import chromium
from tests.conftest import ROOT, require_model
from tests.servers import running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model, pytest.mark.browser]
REPORTS = ROOT / "reports"
VAGUE = ["那个钱的事", "请问一下", "那个钱那个事", "问一下哈", "那个东西到底怎么弄啊", "嗯那个事情你们看一下", "上次说的那件事怎么样了", "帮我看看这个情况", "就是那个问题"]


def chat(urls, sender, message):
    r = requests.post(f"{urls['rasa']}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=60)
    assert r.status_code == 200
    return r.json()


def low_confidence_text(urls):
    for text in VAGUE:
        parsed = requests.post(f"{urls['rasa']}/model/parse", json={"text": text}, headers=api_headers(), timeout=30).json()
        if parsed["intent"]["name"] == "nlu_fallback":
            return text
    pytest.fail("none of the vague questions is below the confidence threshold")


def test_agent_console_end_to_end(tmp_path):
    require_model()
    REPORTS.mkdir(exist_ok=True)
    with chromium() as browser, running_assistant(tmp_path) as urls:
        AgentStore(urls["db_url"]).add("小王", "s3cret-pass")
        page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
        page.goto(urls["console"])
        page.fill("#login-name", "小王")
        page.fill("#login-password", "s3cret-pass")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#app-view:not([hidden])")
        page.wait_for_selector("#live:not(.off)")

        user = f"web-{uuid.uuid4().hex[:8]}"
        text = low_confidence_text(urls)
        replies = chat(urls, user, text)  # not understood: no ticket, 转人工 offered
        store = TicketStore(urls["db_url"])
        assert store.active_ticket(user) is None
        assert "/contact_human" in [b["payload"] for m in replies for b in m.get("buttons", [])]
        replies = chat(urls, user, "/contact_human")
        ticket = store.active_ticket(user)
        assert ticket and ticket["reason"] == "contact_human"
        assert ticket["number"] in "\n".join(m.get("text", "") for m in replies)

        row = page.wait_for_selector(f"tr[data-number='{ticket['number']}']", timeout=15000)  # live, no reload
        page.screenshot(path=str(REPORTS / "console_queue.png"), full_page=True)
        row.click()
        page.wait_for_selector("#ticket:not([hidden])")
        page.click("#claim")
        page.wait_for_selector("#reply-text:not([disabled])")
        assert text in page.inner_text("#transcript")
        page.fill("#reply-text", "您好，我是人工客服小王，请问具体是哪笔订单？")
        page.click("#reply-form button[type=submit]")
        page.wait_for_selector("#transcript li.agent")
        page.screenshot(path=str(REPORTS / "console_ticket.png"), full_page=True)

        got = requests.post(f"{urls['rasa']}/webhooks/rest/poll", json={"sender": user}, timeout=10).json()
        assert any("人工客服小王" in m["text"] and m["metadata"]["from"] == "agent" for m in got)
        chat(urls, user, "是昨天那笔 88 元的订单")
        page.wait_for_function("document.querySelector('#transcript').innerText.includes('88 元')", timeout=15000)

        page.fill("#close-note", "已告知用户退款进度")
        page.click("#close-form button[type=submit]")
        page.wait_for_function("document.querySelector('#t-status').innerText.includes('已结单')", timeout=15000)
        page.screenshot(path=str(REPORTS / "console_closed.png"), full_page=True)

        back = requests.post(f"{urls['rasa']}/webhooks/rest/poll", json={"sender": user}, timeout=10).json()
        assert any("打分" in m["text"] for m in back)
        chat(urls, user, "4")
        assert store.get(ticket["number"])["rating"] == 4
        again = chat(urls, user, "支付密码忘了怎么重置")
        assert again[-1]["text"] == "这个回答解决您的问题了吗？"
