"""Stock socket.io clients against a real Rasa server, speaking the protocol of rasa-webchat and
Rasa's own widget (python-socketio's client, as those widgets use socket.io): `session_request
{session_id}` with the id they were confirmed, their start payloads, only the last message's
quick replies, Markdown text; the websocket transport (not only polling); a page of a refused
origin logged with the setting to change.

The clients use the websocket transport, as the widgets do once connected (and a polling
client's disconnect waits for its pending long poll, up to 30 s). Each client says it comes from
its own address (X-Forwarded-For, as nginx sends it), so the per-address limits of one test do
not reach another.

The browser side, with the released widget itself: tests/test_stock_widgets.py."""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any, Dict, List, Optional

import pytest
import requests

from bot.faq.store import shared_store
from bot.handoff.store import TicketStore
from bot.security.tokens import api_headers, issue_session
from tests.conftest import require_model
from tests.servers import running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model]
ERROR_TEXTS = ("消息格式不正确", "会话已失效", "系统繁忙", "消息未发送")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_model()
    with running_assistant(tmp_path_factory.mktemp("stock-clients"), console=False) as urls:
        yield urls


def tracker(server, sender) -> Dict[str, Any]:
    r = requests.get(f"{server['rasa']}/conversations/{sender}/tracker", headers=api_headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def greeting() -> str:
    faq = shared_store().get()
    return faq.fill(faq.message("greet"))


class StockClient:
    """A socket.io client that behaves like rasa-webchat: it keeps the `session_id` of
    `session_confirm` and sends it back in `session_request` and with every message."""

    def __init__(self, url: str, session_id: Optional[str] = None, address: Optional[str] = None):
        self.url, self.session_id = url, session_id
        self.headers = {"X-Forwarded-For": address or f"198.51.100.{random.randint(1, 199)}"}

    async def __aenter__(self):
        import socketio

        self.client = socketio.AsyncClient()
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.tokens: asyncio.Queue = asyncio.Queue()
        self.said: asyncio.Queue = asyncio.Queue()
        self.client.on("session_confirm", self.confirmed.put)
        self.client.on("session_token", self.tokens.put)
        self.client.on("bot_uttered", self.said.put)
        await self.client.connect(self.url, headers=self.headers, socketio_path="/socket.io",
                                  transports=["websocket"], wait_timeout=30)
        return self

    async def __aexit__(self, *_):
        await self.client.disconnect()

    async def request_session(self) -> str:
        await self.client.emit("session_request", {"session_id": self.session_id})
        confirmed = await asyncio.wait_for(self.confirmed.get(), 30)
        self.session_id = confirmed["session_id"] if isinstance(confirmed, dict) else confirmed
        self.conversation = (await asyncio.wait_for(self.tokens.get(), 30))["session_id"]
        return self.session_id

    async def say(self, message: Any = "", quiet: float = 2.0, key: str = "message") -> List[Dict[str, Any]]:
        data = {"session_id": self.session_id, "customData": {"language": "zh"}}
        if key:
            data[key] = message
        await self.client.emit("user_uttered", data)
        got = [await asyncio.wait_for(self.said.get(), 60)]
        while True:
            try:
                got.append(await asyncio.wait_for(self.said.get(), quiet))
            except asyncio.TimeoutError:
                return got


def run(coroutine):
    return asyncio.run(coroutine)


def test_the_websocket_transport_gets_an_answer(server):
    """python-socketio's AsyncClient over websocket only (rasa-webchat and our widget try
    websocket first): the lock file's aiohttp and python-engineio must work together."""
    async def scenario():
        async with StockClient(server["rasa"]) as client:
            await client.request_session()
            assert client.client.transport() == "websocket"
            return await client.say("退款一般几天到账")

    replies = run(scenario())
    assert any("工作日" in r.get("text", "") for r in replies), replies


@pytest.mark.parametrize("message, key", [("/get_started", "message"), ("/greet", "message"), ("/start", "message"),
                                          (None, "message"), ("", "message"), (None, None)],
                         ids=["get_started", "greet", "start", "null", "empty", "no-message"])
def test_a_start_payload_or_an_empty_first_message_gets_the_greeting(server, message, key):
    """rasa-webchat sends its `initPayload` (README: "/get_started"; most Rasa examples "/greet")
    when the chat opens, or a message without text when none is configured."""
    async def scenario():
        async with StockClient(server["rasa"]) as client:
            await client.request_session()
            return client.conversation, await client.say(message, key=key)

    conversation, replies = run(scenario())
    texts = [r.get("text", "") for r in replies]
    assert texts == [greeting()], texts
    assert not any(e in t for t in texts for e in ERROR_TEXTS)
    users = [e for e in tracker(server, conversation)["events"] if e["event"] == "user"]
    assert [(e["text"], e["parse_data"]["intent"]["name"]) for e in users] == [("你好", "greet")]
    assert TicketStore(server["db_url"]).active_ticket(conversation) is None


def test_a_stock_client_keeps_its_conversation_across_reloads_and_reconnects(server):
    """The confirmed session_id is the signed token: sent back, it is the same conversation (the
    history is server-side, replies reach the new socket), and coming back is not a new
    conversation for the per-address limit (new_sessions_per_client, burst 20)."""
    address = "198.51.100.201"  # no other test uses it

    async def scenario():
        async with StockClient(server["rasa"], address=address) as first:
            token = await first.request_session()
            conversation = first.conversation
            await first.say("退款一般几天到账")
        confirmed = []
        for _ in range(25):  # more reloads than the limit allows new conversations
            async with StockClient(server["rasa"], session_id=token, address=address) as again:
                confirmed.append((await again.request_session(), again.conversation))
        async with StockClient(server["rasa"], session_id=token, address=address) as again:
            await again.request_session()
            replies = await again.say("我要转人工")
        return token, conversation, confirmed, replies

    token, conversation, confirmed, replies = run(scenario())
    assert token.startswith(conversation + ".")  # the token names the conversation and is signed
    assert confirmed == [(token, conversation)] * 25
    assert any("工单号" in r.get("text", "") for r in replies)
    users = [e["text"] for e in tracker(server, conversation)["events"] if e["event"] == "user"]
    assert users == ["退款一般几天到账", "我要转人工"]  # one conversation, history kept
    assert TicketStore(server["db_url"]).active_ticket(conversation)["channel"] == "socketio"


@pytest.mark.parametrize("claimed", ["uuid", "bare-id", "forged", "expired", "number"])
def test_forged_or_foreign_session_ids_get_a_new_conversation(server, claimed):
    victim, victim_token = issue_session()
    ids = {"uuid": uuid.uuid4().hex, "bare-id": victim, "forged": victim_token[:-2] + "AA",
           "expired": issue_session(now=time.time() - 40 * 86400)[1], "number": 12345}

    async def scenario():
        async with StockClient(server["rasa"], session_id=ids[claimed]) as client:
            token = await client.request_session()
            return token, client.conversation

    token, conversation = run(scenario())
    assert token != ids[claimed] and conversation != victim and token.startswith(conversation + ".")


def test_every_button_reaches_a_client_that_shows_only_the_last_quick_replies(server):
    """An FAQ answer (with related questions) then 是/否: the last message carries them all; the
    numbered steps keep their line breaks as Markdown hard breaks."""
    async def scenario():
        async with StockClient(server["rasa"]) as client:
            await client.request_session()
            return await client.say("换了新手机登录不上怎么办")

    replies = run(scenario())
    faq = shared_store().get()
    assert replies[-1]["text"] == faq.message("ask_resolved")
    assert all(not r.get("quick_replies") for r in replies[:-1]), replies
    payloads = [b["payload"] for b in replies[-1]["quick_replies"]]
    assert payloads[:2] == ["/affirm", "/deny"]
    assert any(p.startswith("/login_failure{") for p in payloads), payloads  # the related questions
    steps = next(r["text"] for r in replies if "1. " in r.get("text", ""))
    assert "  \n1. " in steps and "  \n2. " in steps
    assert "\n" not in steps.replace("  \n", "")  # every line break is a hard break


def test_a_push_from_the_http_api_keeps_its_line_breaks(server):
    """An agent's reply reaches the widget through Rasa's HTTP API (output_channel=socketio)."""
    async def scenario():
        async with StockClient(server["rasa"]) as client:
            await client.request_session()
            push = await asyncio.get_running_loop().run_in_executor(None, lambda: requests.post(
                f"{server['rasa']}/conversations/{client.conversation}/tracker/events",
                params={"output_channel": "socketio", "execute_side_effects": "true"},
                json=[{"event": "bot", "text": "【人工客服 小王】请按以下步骤操作：\n1. 打开钱包\n2. 点「我的」"}],
                headers=api_headers(), timeout=30))
            assert push.status_code == 200, push.text
            return await asyncio.wait_for(client.said.get(), 30)

    assert run(scenario())["text"] == "【人工客服 小王】请按以下步骤操作：  \n1. 打开钱包  \n2. 点「我的」"


def test_a_refused_origin_is_logged_with_the_setting_to_change(server):
    handshake = f"{server['rasa']}/socket.io/?EIO=4&transport=polling"
    origin = f"https://shop-{uuid.uuid4().hex[:6]}.example"
    assert requests.get(handshake, headers={"Origin": origin}, timeout=10).status_code == 400
    assert requests.get(handshake, headers={"Origin": server["rasa"]}, timeout=10).status_code == 200
    deadline = time.time() + 10
    while time.time() < deadline:
        lines = [line for line in open(server["rasa_log"], encoding="utf-8", errors="replace") if origin in line]
        if lines:
            break
        time.sleep(0.5)
    assert lines and "cors_allowed_origins" in lines[0] and "credentials.yml" in lines[0], lines
