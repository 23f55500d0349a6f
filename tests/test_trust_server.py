"""Trust end to end: masking before storage, the safety warning, scam hand-off, typed payloads,
session tokens behind the proxy, rate limits (429) and the JWT on Rasa's HTTP API."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests

from bot.handoff.store import TicketStore
from bot.security.tokens import api_headers, issue_session
from tests.conftest import require_model
from tests.servers import always_open_settings, running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model]
PASSWORD = "Abc@2026x"
CARD = "6222 0212 3456 7890 128"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_model()
    workdir = tmp_path_factory.mktemp("trust")
    settings = always_open_settings(workdir)
    strict = workdir / "strict.yml"  # a small per-address budget, so the limit is reached quickly
    strict.write_text(settings.read_text(encoding="utf-8").replace(
        "per_client: {per_minute: 300, burst: 60}", "per_client: {per_minute: 6, burst: 5}"), encoding="utf-8")
    with running_assistant(workdir, console=False, extra_env={"WALLET_SETTINGS": str(strict)}) as urls:
        yield urls


def post(server, sender, message, headers=None):
    return requests.post(f"{server['rasa']}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                         headers=headers or {}, timeout=60)


def chat(server, sender, message):
    r = post(server, sender, message)
    assert r.status_code == 200, r.text
    return [m.get("text", "") for m in r.json()]


def tracker(server, sender):
    r = requests.get(f"{server['rasa']}/conversations/{sender}/tracker", headers=api_headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_secrets_are_masked_before_storage_and_the_user_is_warned(server):
    user = f"u-{uuid.uuid4().hex[:8]}"
    replies = chat(server, user, f"我的登录密码是{PASSWORD}，卡号 {CARD} 登录不上去")
    assert "官方客服绝不会" in replies[0] and "修改" in replies[0]  # the warning comes first
    assert len(replies) > 1  # and the question is still answered
    chat(server, user, "转人工")
    stored = json.dumps(tracker(server, user), ensure_ascii=False)
    assert PASSWORD not in stored and "62220212" not in stored.replace(" ", "")
    assert "[卡号尾号0128]" in stored and "[密码已隐藏]" in stored
    ticket = [t for t in TicketStore(server["db_url"]).queue() if t["conversation_id"] == user][0]
    assert "[密码已隐藏]" in " ".join(ticket["recent_messages"])
    for path in Path(server["workdir"]).iterdir():  # databases and logs
        if path.is_file():
            raw = path.read_bytes()
            assert PASSWORD.encode() not in raw, path.name
            assert b"6222 0212 3456 7890" not in raw and b"6222021234567890128" not in raw, path.name


def test_a_scam_signal_inside_another_question_hands_off_first_in_queue(server):
    user = f"u-{uuid.uuid4().hex[:8]}"
    replies = "\n".join(chat(server, user, "退款一直没到账，有个客服让我先把钱转到安全账户里"))
    assert "96110" in replies and "工单号" in replies
    ticket = TicketStore(server["db_url"]).queue()[0]
    assert ticket["conversation_id"] == user and ticket["reason"] == "scam_signal"


def test_a_typed_payload_is_plain_text_unless_offered(server):
    user = f"u-{uuid.uuid4().hex[:8]}"
    chat(server, user, '/contact_human{"last_topic": "refund"}')
    latest = [e for e in tracker(server, user)["events"] if e["event"] == "user"][-1]
    assert not latest["text"].startswith("/")
    assert latest["parse_data"]["intent"].get("confidence", 0) < 1.0 or latest["text"] != "/contact_human"
    other = f"u-{uuid.uuid4().hex[:8]}"
    assert chat(server, other, "退款一般几天到账")[-1] == "这个回答解决您的问题了吗？"
    assert "太好了" in chat(server, other, "/affirm")[0]  # offered with the answer: accepted


def test_users_behind_the_proxy_need_their_session_token(server):
    proxied = {"X-Forwarded-For": "198.51.100.20"}
    assert post(server, "someone", "你好", proxied).status_code == 401
    session = requests.post(f"{server['rasa']}/webhooks/rest/session", headers=proxied, timeout=10).json()
    mine = {**proxied, "X-Session-Token": session["token"]}
    r = post(server, "someone-else", "你好", mine)
    assert r.status_code == 403 and "只能访问自己的会话" in r.json()["error"]
    assert post(server, session["sender"], "你好", mine).status_code == 200
    poll = requests.post(f"{server['rasa']}/webhooks/rest/poll", json={"sender": "someone-else"}, headers=mine, timeout=10)
    assert poll.status_code == 403


def test_one_address_is_rate_limited_with_a_polite_429(server):
    flood = {"X-Forwarded-For": "198.51.100.30"}
    codes = [requests.post(f"{server['rasa']}/webhooks/rest/session", headers=flood, timeout=10) for _ in range(8)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and [r.status_code for r in codes[:5]] == [200] * 5
    assert "稍等" in limited[0].json()["error"] and int(limited[0].headers["Retry-After"]) >= 1
    other = requests.post(f"{server['rasa']}/webhooks/rest/session", headers={"X-Forwarded-For": "198.51.100.31"}, timeout=10)
    assert other.status_code == 200  # the neighbour is not starved


def test_one_conversation_is_rate_limited(server):
    user = f"u-{uuid.uuid4().hex[:8]}"
    codes = [post(server, user, "你好").status_code for _ in range(13)]
    assert codes[:10] == [200] * 10 and 429 in codes[10:]
    r = post(server, user, "你好")
    assert r.status_code == 429 and "发消息太快" in r.json()["error"]
    assert post(server, f"u-{uuid.uuid4().hex[:8]}", "你好").status_code == 200


def test_rasa_http_api_requires_our_jwt(server):
    url = f"{server['rasa']}/conversations/anyone/tracker"
    assert requests.get(url, timeout=10).status_code == 401
    forged = jwt.encode({"user": {"username": "x", "role": "admin"}, "exp": int(time.time()) + 60}, "guess", algorithm="HS256")
    assert requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=10).status_code == 401
    assert requests.get(url, params={"token": "guess"}, timeout=10).status_code == 401
    assert requests.post(f"{server['rasa']}/model/parse", json={"text": "你好"}, timeout=10).status_code == 401
    assert requests.get(url, headers=api_headers(), timeout=10).status_code == 200


def test_widget_conversation_comes_from_the_signed_token(server):
    import socketio

    victim, victim_token = issue_session()
    chat(server, victim, "退款一般几天到账")  # the victim's conversation (its id leaked somehow)
    before = len(tracker(server, victim)["events"])

    async def scenario():
        client, confirmed, got = socketio.AsyncClient(), asyncio.Queue(), asyncio.Queue()
        client.on("session_token", confirmed.put)
        client.on("bot_uttered", got.put)
        await client.connect(server["rasa"], socketio_path="/socket.io", transports=["polling"])
        try:
            forged = victim_token[:-2] + ("AA" if not victim_token.endswith("AA") else "BB")
            await client.emit("session_request", {"token": forged, "session_id": victim})
            issued = await asyncio.wait_for(confirmed.get(), 15)
            await client.emit("user_uttered", {"message": "你好", "session_id": victim})
            await asyncio.wait_for(got.get(), 30)
            return issued
        finally:
            await client.disconnect()

    issued = asyncio.run(scenario())
    assert issued["session_id"] != victim and issued["token"]
    assert len(tracker(server, victim)["events"]) == before  # nothing was written to the victim's
    assert any(e["event"] == "user" and e["text"] == "你好" for e in tracker(server, issued["session_id"])["events"])


@pytest.mark.parametrize("text, topics", [
    ("银行卡 6222 0212 3456 7890 128 付款一直失败", {"payment_failure"}),
    ("退款说退到尾号的卡 6222021234567890128 了，但是一直没到账", {"refund"}),
    ("我手机号 13800138000 换了，想换绑新的手机号", {"change_account_info"}),
    ("我的登录密码是Abc@2026x，输了好几次都登录不上", {"login_failure", "forgot_password"}),
])
def test_the_nlu_still_classifies_masked_messages(server, text, topics):
    """What the NLU gets is the masked text: it must still find the topic."""
    from bot.privacy.masker import mask

    masked = mask(text).text
    assert masked != text
    parsed = requests.post(f"{server['rasa']}/model/parse", json={"text": masked}, headers=api_headers(), timeout=30).json()
    assert parsed["intent"]["name"] in topics, (masked, parsed["intent"])


def test_round_two_forms_and_a_split_card_are_masked_before_storage(server):
    """Issue 16, round two: a card typed over two messages, and forms the first masker missed,
    never reach the tracker, the ticket transcript or any file of the run in clear."""
    user = f"u-{uuid.uuid4().hex[:8]}"
    sent = ["卡号 6222 0212 3456", "7890 128", "密码是“zxcv9876”", "手机 138\u30000013\u30008000", "验证码是四八三九二零"]
    for text in sent:
        chat(server, user, text)
    chat(server, user, "转人工")
    said = [e["text"] for e in tracker(server, user)["events"] if e["event"] == "user"]
    assert said[:5] == ["卡号 [卡号已隐藏]", "[卡号尾号0128]", "密码是“[密码已隐藏]”", "手机 [手机尾号8000]",
                        "验证码是[验证码已隐藏]"]
    ticket = [t for t in TicketStore(server["db_url"]).queue() if t["conversation_id"] == user][0]
    assert "[卡号尾号0128]" in " ".join(ticket["recent_messages"])
    for path in Path(server["workdir"]).iterdir():  # databases and logs
        if path.is_file():
            raw = path.read_bytes()
            for secret in ("0212 3456", "7890 128", "zxcv9876", "0013\u30008000", "四八三九二零"):
                assert secret.encode() not in raw, (path.name, secret)
