"""Stock Rasa chat widgets, unchanged, in a real headless Chromium on an integrator's site of
another origin: ask → answer with buttons → click a button → reload → the same conversation →
hand-off (转人工) → an agent's reply from the console API arrives live → rating.

rasa-webchat 1.0.1 is the released UMD file from npm (tests/vendor/rasa-webchat/, with its
licence), configured only as its README documents (`socketUrl`, `socketPath`, `initPayload`,
`title`, `customData`); our server lists the site's origin in `cors_allowed_origins`, as
docs/channels.md tells an integrator. The page loads only local files: the one outside request
the widget makes itself (Google Fonts, from its CSS) is refused and the widget works without it.

Rasa's own widget (@rasahq/rasa-chat) could not be tested: the npm registry answers 404 for it,
and its predecessor @rasahq/rasa-webchat 0.0.11 ships no bundle (see tests/vendor/README.md).
Its protocol is covered by tests/test_socketio_stock_clients.py.

Screenshots: reports/stock_rasa_webchat_*.png."""
from __future__ import annotations

import json

import pytest
import requests

from bot.faq.store import shared_store
from bot.handoff.store import TicketStore
from bot.security.tokens import api_headers
from tests.browser import chromium
from tests.conftest import ROOT, require_model
from tests.servers import ConsoleAgent, running_assistant
from tests.stock_widgets import VENDOR, credentials_allowing, host_site, rasa_webchat_page

pytestmark = [pytest.mark.server, pytest.mark.model, pytest.mark.browser]
REPORTS = ROOT / "reports"
ERROR_TEXTS = ("消息格式不正确", "会话已失效", "系统繁忙", "消息未发送")
BOT_TEXTS = "els => els.map(e => e.innerText)"
RESPONSES = ".rw-from-response .rw-message-text"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The integrator's site and our assistant (with the site's origin allowed)."""
    require_model()
    workdir = tmp_path_factory.mktemp("stock-widgets")
    with host_site() as site, running_assistant(workdir, credentials=str(credentials_allowing(workdir, site.origin))) \
            as urls:
        yield site, urls


def tracker(urls, sender):
    r = requests.get(f"{urls['rasa']}/conversations/{sender}/tracker", headers=api_headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def local_only(page, site, urls):
    """Let the page reach only the site and our server; record what else it asked for."""
    refused = []

    def route(r):
        if r.request.url.startswith((site.origin + "/", urls["rasa"] + "/")):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return refused


def responses(page):
    return page.eval_on_selector_all(RESPONSES, BOT_TEXTS)


def wait_response(page, text, timeout=60000):
    page.wait_for_function(
        "t => [...document.querySelectorAll(%s)].some(e => e.innerText.includes(t))" % json.dumps(RESPONSES),
        arg=text, timeout=timeout)


def replies(page):
    return page.eval_on_selector_all(".rw-replies .rw-reply", BOT_TEXTS)


def session(page):
    stored = page.evaluate("() => JSON.parse(localStorage.getItem('chat_session') || 'null')")
    return stored and stored.get("session_id")


def open_chat(browser, site, urls, viewport, init_payload="/get_started"):
    path = "/webchat" + (init_payload.replace("/", "-") or "-without-initPayload") + ".html"
    site.pages[path] = rasa_webchat_page(urls["rasa"], init_payload)
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    page = context.new_page()
    refused = local_only(page, site, urls)
    page.goto(site.origin + path)
    page.click(".rw-launcher")
    return page, refused


def greeting():
    faq = shared_store().get()
    return faq.fill(faq.message("greet"))


def test_rasa_webchat_end_to_end(stack):
    site, urls = stack
    faq = shared_store().get()
    REPORTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page, refused = open_chat(browser, site, urls, {"width": 1280, "height": 800})
        wait_response(page, greeting())  # initPayload "/get_started": the greeting, no ticket
        token = session(page)
        conversation = token.split(".")[0]
        assert TicketStore(urls["db_url"]).active_ticket(conversation) is None

        page.fill(".rw-new-message", "换了新手机登录不上怎么办")
        page.keyboard.press("Enter")
        wait_response(page, faq.message("ask_resolved"))
        page.wait_for_selector(".rw-replies .rw-reply")
        titles = replies(page)
        assert titles[:2] == [faq.message("button_yes"), faq.message("button_no")]
        related = titles[2:]
        assert related, "the related questions ride on the last message, the only one rasa-webchat shows"
        steps = page.eval_on_selector_all(RESPONSES, "els => els.filter(e => e.innerText.includes('1. ')).map(e => "
                                          "[e.innerText, e.querySelectorAll('br, li').length])")
        assert steps and steps[0][1] >= 2 and steps[0][0].count("\n") >= 2, steps  # steps on their own lines
        page.screenshot(path=str(REPORTS / "stock_rasa_webchat_answer.png"))

        count = len(responses(page))
        page.locator(".rw-replies .rw-reply", has_text=related[0]).click()
        page.wait_for_function(f"document.querySelectorAll({json.dumps(RESPONSES)}).length >= {count + 2}",
                               timeout=60000)
        wait_response(page, faq.message("ask_resolved"))
        before = responses(page)

        page.reload()  # the widget keeps its session id and history in localStorage
        page.wait_for_function(f"document.querySelectorAll({json.dumps(RESPONSES)}).length >= {len(before)}",
                               timeout=30000)
        page.wait_for_timeout(2000)  # session_confirm: a new session would clear the history
        assert session(page) == token and responses(page) == before
        users = [e["text"] for e in tracker(urls, conversation)["events"] if e["event"] == "user"]
        assert users[:2] == ["你好", "换了新手机登录不上怎么办"] and len(users) == 3  # the same conversation

        page.fill(".rw-new-message", "我要转人工")
        page.keyboard.press("Enter")
        wait_response(page, "工单号")
        ticket = TicketStore(urls["db_url"]).active_ticket(conversation)
        assert ticket and ticket["channel"] == "socketio"

        agent = ConsoleAgent(urls)
        agent.take(ticket["number"], "您好，我是人工客服，马上为您处理")
        wait_response(page, "马上为您处理", timeout=30000)  # pushed live, no reload
        page.screenshot(path=str(REPORTS / "stock_rasa_webchat_agent.png"))

        assert agent.post(ticket["number"], "close", note="已处理").ok
        page.wait_for_function("[...document.querySelectorAll('.rw-replies .rw-reply')].some(b => b.innerText === '5 分')",
                               timeout=30000)
        page.locator(".rw-replies .rw-reply", has_text="5 分").click()
        wait_response(page, "感谢您的评价", timeout=30000)
        assert TicketStore(urls["db_url"]).get(ticket["number"])["rating"] == 5
        page.screenshot(path=str(REPORTS / "stock_rasa_webchat_rating.png"))

        shown = "\n".join(responses(page))
        assert not any(e in shown for e in ERROR_TEXTS), shown
        assert all("fonts.googleapis.com" in url for url in refused), refused  # nothing else left the machine


@pytest.mark.parametrize("init_payload", ["/greet", "/start", ""], ids=["greet", "start", "no-initPayload"])
def test_rasa_webchat_opens_with_the_greeting(stack, init_payload):
    """Most Rasa examples configure `initPayload: "/greet"`; without one, rasa-webchat sends a
    message with no text when the chat opens. Either way: the greeting, no error, no ticket."""
    site, urls = stack
    with chromium() as browser:
        page, _ = open_chat(browser, site, urls, {"width": 360, "height": 640}, init_payload)
        wait_response(page, greeting())
        page.wait_for_timeout(1500)
        assert responses(page) == [greeting()]
        conversation = session(page).split(".")[0]
        assert TicketStore(urls["db_url"]).active_ticket(conversation) is None
        if not init_payload:
            page.screenshot(path=str(REPORTS / "stock_rasa_webchat_phone.png"))


def test_the_vendored_widgets_are_test_fixtures_not_served_by_the_product(stack):
    _, urls = stack
    assert (VENDOR / "rasa-webchat" / "index.js").is_file() and (VENDOR / "rasa-webchat" / "LICENSE").is_file()
    for path in ("index.js", "rasa-webchat", "vendor", "rasa-webchat/index.js"):
        assert requests.get(f"{urls['rasa']}/webhooks/socketio/{path}", timeout=10).status_code == 404
    assert not list((ROOT / "bot").rglob("rasa-webchat*"))
