"""WeChat 公众号 channel end to end: requests signed and encrypted the way WeChat's servers do
it, against the real Rasa + action servers, with a fake WeChat API for outbound messages."""
from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from types import SimpleNamespace
from typing import Dict, Optional

import pytest
import requests
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto

from bot.security.tokens import api_headers
from bot.channels.wechat import NOT_TEXT, ButtonMemory, WeChatApi, WeChatInput, render_batch
from bot.channels.wechat_xml import XmlError, parse_wechat_xml
from bot.faq.model import load_faq
from tests.conftest import ROOT, require_model
from tests.fake_wechat import FakeWeChat, event_xml, media_xml, sign, signed_query, text_xml
from tests.servers import ConsoleAgent, running_assistant


def live(test):
    """Tests that talk to the running assistant (fixture `env`) need its servers and the trained
    model; the in-process ones (no fixture) belong to the fast lane."""
    return pytest.mark.server(pytest.mark.model(test))


APP_ID, APP_SECRET, TOKEN = "wx5f3e8d1c2b4a6978", "s3cr3t-app-secret", "wallet_wechat_token"
AES_KEY = base64.b64encode(os.urandom(32)).decode()[:-1]  # WeChat's EncodingAESKey: 43 characters
SMS_QUESTION = "短信验证码一直收不到怎么办"
SMS_ANSWER = load_faq(ROOT / "data" / "faq.yml").question("forgot_password.no_sms_code").answer.splitlines()[0]
CREDENTIALS = """\
bot.channels.rest.WalletRestInput:
bot.channels.wechat.WeChatInput:
  app_id: ${WECHAT_APP_ID}
  app_secret: ${WECHAT_APP_SECRET}
  token: ${WECHAT_TOKEN}
  encoding_aes_key: ${WECHAT_ENCODING_AES_KEY}
  api_base_url: ${WECHAT_API_BASE_URL}
tests.fake_wechat.PlainWeChatInput:
  app_id: ${WECHAT_APP_ID}
  app_secret: ${WECHAT_APP_SECRET}
  token: ${WECHAT_TOKEN}
  api_base_url: ${WECHAT_API_BASE_URL}
"""
XXE = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       '<xml><ToUserName>gh_wallet</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>1</CreateTime>'
       '<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>{msg_id}</MsgId></xml>')
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "哈哈哈哈哈哈哈哈哈哈">'
          + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi"))
          + ']><xml><ToUserName>gh_wallet</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>1</CreateTime>'
          '<MsgType>text</MsgType><Content>&i;</Content><MsgId>{msg_id}</MsgId></xml>')
_ids = count(int(time.time() * 1000))


class WeChatServer:
    """Plays WeChat's side: signs (and in safe mode encrypts) each push, reads the reply."""

    def __init__(self, url: str, fake: FakeWeChat, crypto: Optional[WeChatCrypto] = None) -> None:
        self.url, self.fake, self.crypto = url, fake, crypto

    def post(self, xml: str, timestamp: Optional[int] = None, raw: bool = False) -> requests.Response:
        query = signed_query(TOKEN, timestamp)
        body = xml
        if self.crypto is not None and not raw:
            enc = ET.fromstring(self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"])).findtext("Encrypt")
            query.update(encrypt_type="aes", msg_signature=sign(TOKEN, query["timestamp"], query["nonce"], enc))
            body = f"<xml><ToUserName><![CDATA[gh_wallet]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        return requests.post(self.url, params=query, data=body.encode("utf-8"), timeout=30)

    def passive(self, resp: requests.Response) -> Dict[str, str]:
        """Fields of a passive reply, decrypted and its signature checked in safe mode."""
        assert resp.status_code == 200, resp.text
        xml = resp.text
        if self.crypto is not None:
            outer = ET.fromstring(xml)
            xml = self.crypto.decrypt_message(xml, outer.findtext("MsgSignature"), outer.findtext("TimeStamp"),
                                              outer.findtext("Nonce"))
        return {child.tag: child.text or "" for child in ET.fromstring(xml)}

    def say(self, openid: str, xml: str) -> str:
        """What the user sees: the passive reply, or what came through 客服消息 after "success"."""
        before = len(self.fake.texts_to(openid))
        resp = self.post(xml)
        assert resp.status_code == 200, resp.text
        if resp.text != "success":
            reply = self.passive(resp)
            assert reply["ToUserName"] == openid and reply["FromUserName"] == "gh_wallet"
            assert reply["MsgType"] == "text"
            return reply["Content"]
        deadline, seen, stable_since = time.time() + 30, before, time.time()
        while time.time() < deadline:
            now = len(self.fake.texts_to(openid))
            if now != seen:
                seen, stable_since = now, time.time()
            elif now > before and time.time() - stable_since > 1.5:
                break
            time.sleep(0.1)
        return "\n\n".join(self.fake.texts_to(openid)[before:])

    def text(self, openid: str, content: str) -> str:
        return self.say(openid, text_xml(openid, content, next(_ids)))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_model()
    workdir = tmp_path_factory.mktemp("wechat")
    credentials = workdir / "credentials.yml"
    credentials.write_text(CREDENTIALS, encoding="utf-8")
    with FakeWeChat(APP_ID, APP_SECRET) as fake:
        extra = {"WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET, "WECHAT_TOKEN": TOKEN,
                 "WECHAT_ENCODING_AES_KEY": AES_KEY, "WECHAT_API_BASE_URL": fake.base_url}
        with running_assistant(workdir, credentials=str(credentials), extra_env=extra) as urls:
            yield SimpleNamespace(
                urls=urls, fake=fake,
                safe=WeChatServer(f"{urls['rasa']}/webhooks/wechat/webhook", fake, WeChatCrypto(TOKEN, AES_KEY, APP_ID)),
                plain=WeChatServer(f"{urls['rasa']}/webhooks/wechat_plain/webhook", fake),
            )


def openid() -> str:
    return "o" + uuid.uuid4().hex[:27]  # OpenIDs are 28 characters


def user_turns(env, sender: str):
    resp = requests.get(f"{env.urls['rasa']}/conversations/{sender}/tracker", headers=api_headers(), timeout=30)
    return [e["text"] for e in resp.json()["events"] if e["event"] == "user"]


# -- URL verification and request authentication ----------------------------------------------------

@live
@pytest.mark.parametrize("mode", ["safe", "plain"])
def test_url_verification_echoes_echostr(env, mode):
    server = getattr(env, mode)
    resp = requests.get(server.url, params=signed_query(TOKEN, echostr="7519436208815"), timeout=10)
    assert resp.status_code == 200 and resp.text == "7519436208815"


@live
def test_url_verification_with_bad_signature_or_stale_timestamp_is_403(env):
    query = signed_query(TOKEN, echostr="1")
    assert requests.get(env.safe.url, params={**query, "signature": "0" * 40}, timeout=10).status_code == 403
    stale = signed_query(TOKEN, int(time.time()) - 301, echostr="1")
    assert requests.get(env.safe.url, params=stale, timeout=10).status_code == 403
    assert requests.get(env.safe.url, params={"echostr": "1"}, timeout=10).status_code == 403


@live
def test_forged_signature_on_post_is_403_and_not_processed(env):
    user = openid()
    query = {**signed_query(TOKEN), "signature": sign("wrong-token", "1", "2")}
    resp = requests.post(env.plain.url, params=query, data=text_xml(user, SMS_QUESTION, next(_ids)).encode(), timeout=10)
    assert resp.status_code == 403
    assert requests.post(env.plain.url, data=text_xml(user, SMS_QUESTION, next(_ids)).encode(),
                         timeout=10).status_code == 403
    assert user_turns(env, user) == []


@live
def test_stale_timestamp_on_post_is_403(env):
    user = openid()
    resp = env.plain.post(text_xml(user, SMS_QUESTION, next(_ids)), timestamp=int(time.time()) - 6 * 60)
    assert resp.status_code == 403
    resp = env.safe.post(text_xml(user, SMS_QUESTION, next(_ids)), timestamp=int(time.time()) - 6 * 60)
    assert resp.status_code == 403
    assert user_turns(env, user) == []


@live
def test_safe_mode_rejects_bad_message_signature_and_plain_bodies(env):
    user = openid()
    query = signed_query(TOKEN)
    enc = ET.fromstring(env.safe.crypto.encrypt_message(text_xml(user, SMS_QUESTION, next(_ids)), query["nonce"],
                                                        query["timestamp"])).findtext("Encrypt")
    query.update(encrypt_type="aes", msg_signature="f" * 40)
    body = f"<xml><ToUserName>gh_wallet</ToUserName><Encrypt>{enc}</Encrypt></xml>"
    assert requests.post(env.safe.url, params=query, data=body.encode(), timeout=10).status_code == 403
    # a plain body on the safe-mode account: the body would be covered by no signature at all
    assert env.safe.post(text_xml(user, SMS_QUESTION, next(_ids)), raw=True).status_code == 403
    assert user_turns(env, user) == []


# -- hostile and broken XML ------------------------------------------------------------------------------

@live
@pytest.mark.parametrize("body", ["<xml><ToUserName>gh", "not xml at all", "", "<foo><MsgType>text</MsgType></foo>",
                                  "<xml><Content>没有发送者</Content></xml>", "<xml>" + "长" * 30000 + "</xml>"])
def test_malformed_xml_is_400(env, body):
    assert env.plain.post(body).status_code == 400


@live
@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_entity_attacks_are_400_and_nothing_processed(env, payload, mode):
    user = openid()
    sends = len(env.fake.sends)
    started = time.time()
    resp = getattr(env, mode).post(payload.format(openid=user, msg_id=next(_ids)))
    assert resp.status_code == 400 and time.time() - started < 5
    assert user_turns(env, user) == [] and len(env.fake.sends) == sends


def test_hardened_parser_refuses_doctype_and_accepts_wechat_xml():
    for evil in (XXE, LAUGHS):
        with pytest.raises(XmlError):
            parse_wechat_xml(evil.format(openid="o1", msg_id=1))
    fields = parse_wechat_xml(text_xml("o1", "你好 <&>", 42))
    assert fields["Content"] == "你好 <&>" and fields["MsgId"] == "42"


# -- messages ---------------------------------------------------------------------------------------------

@live
def test_plain_text_gets_the_faq_answer(env):
    reply = env.plain.text(openid(), SMS_QUESTION)
    assert SMS_ANSWER in reply
    assert "这个回答解决您的问题了吗？" in reply and "回复数字：1. 是  2. 否" in reply


@live
def test_safe_mode_round_trip(env):
    user = openid()
    resp = env.safe.post(text_xml(user, SMS_QUESTION, next(_ids)))
    if resp.text == "success":  # slower than the passive window: it came through the API
        assert SMS_ANSWER in env.fake.wait_for_text(user, lambda t: SMS_ANSWER in t)
    else:
        assert "<Encrypt>" in resp.text and SMS_ANSWER not in resp.text
        reply = env.safe.passive(resp)
        assert reply["ToUserName"] == user and SMS_ANSWER in reply["Content"]
    assert user_turns(env, user) == [SMS_QUESTION]


@live
@pytest.mark.parametrize("mode", ["safe", "plain"])
def test_subscribe_gets_a_welcome(env, mode):
    user = openid()
    reply = getattr(env, mode).say(user, event_xml(user, "subscribe"))
    assert reply.startswith("感谢关注") and "钱包小助手" in reply


@live
def test_unsubscribe_is_acknowledged_silently(env):
    user = openid()
    resp = env.plain.post(event_xml(user, "unsubscribe"))
    assert resp.status_code == 200 and resp.text == "success"


@live
@pytest.mark.parametrize("kind", ["image", "voice", "location"])
def test_non_text_messages_get_a_polite_text(env, kind):
    user = openid()
    assert env.safe.say(user, media_xml(user, kind, next(_ids))) == NOT_TEXT
    assert user_turns(env, user) == []


@live
def test_retries_of_the_same_msg_id_are_processed_once(env):
    user = openid()
    xml = text_xml(user, SMS_QUESTION, next(_ids))
    with ThreadPoolExecutor(3) as pool:  # WeChat's retries arrive while the first is still running
        first, *retries = [f.result() for f in [pool.submit(env.plain.post, xml) for _ in range(3)]]
    again = env.plain.post(xml)
    answers = [r for r in [first, *retries, again] if r.text != "success"]
    assert all(r.status_code == 200 for r in [first, *retries, again])
    assert len(answers) <= 1
    assert user_turns(env, user) == [SMS_QUESTION]


@live
def test_numbered_answer_maps_to_the_offered_button(env):
    user = openid()
    assert "回复数字：1. 是  2. 否" in env.safe.text(user, SMS_QUESTION)
    assert "太好了" in env.safe.text(user, "1")
    assert user_turns(env, user)[-1] == "/affirm"


@live
def test_typed_payloads_are_not_intents(env):
    user = openid()
    env.plain.text(user, '/contact_human')
    assert user_turns(env, user) == ["contact_human"]


# -- hand-off over WeChat -----------------------------------------------------------------------------

@live
def test_handoff_agent_reply_close_and_rating(env):
    from bot.handoff.store import TicketStore

    user, db = openid(), env.urls["db_url"]
    reply = env.safe.text(user, "转人工")
    ticket = TicketStore(db).active_ticket(user)
    assert ticket and ticket["number"] in reply and ticket["channel"] == "wechat"
    number = ticket["number"]

    agent = ConsoleAgent(env.urls)
    agent.take(number, "您好，我是小王，请问是哪个手机号收不到验证码？")
    pushed = env.fake.wait_for_text(user, lambda t: "请问是哪个手机号" in t)
    assert pushed.startswith("【人工客服 小王】")

    resp = agent.post(number, "close", note="已指导用户")
    assert resp.status_code == 200, resp.text
    rating = env.fake.wait_for_text(user, lambda t: "请为本次人工服务打分" in t)
    assert "回复数字：1. 1 分" in rating

    assert "感谢您的评价" in env.safe.text(user, "5")
    assert TicketStore(db).get(number)["rating"] == 5
    assert SMS_ANSWER in env.safe.text(user, SMS_QUESTION)


# -- in-process: rendering, token cache, slow answers ------------------------------------------------

def test_render_batch_numbers_only_the_last_buttons():
    texts, buttons = render_batch([
        {"text": "答案", "buttons": [{"title": "旧", "payload": "/old"}]},
        {"text": "解决了吗？", "buttons": [{"title": "是", "payload": "/affirm"}, {"title": "否", "payload": "/deny"}]},
    ])
    assert texts == ["答案", "解决了吗？\n回复数字：1. 是  2. 否"] and buttons[0]["payload"] == "/affirm"
    memory = ButtonMemory()
    memory.remember("o1", buttons)
    assert memory.resolve("o1", " ２ ") == "/deny" and memory.resolve("o1", "3") is None
    assert memory.resolve("o2", "1") is None


def test_passive_reply_stays_well_formed():
    channel = WeChatInput(APP_ID, APP_SECRET, TOKEN)
    msg = parse_message(text_xml("o1", "你好", 1))
    reply = ET.fromstring(channel._reply_xml(SimpleNamespace(args={"nonce": "n"}), msg, "a]]>b <&>").body.decode())
    assert reply.findtext("Content") == "a]]>b <&>" and reply.findtext("ToUserName") == "o1"


def test_access_token_is_cached_and_refreshed_when_expired():
    async def run(fake: FakeWeChat) -> None:
        api = WeChatApi(APP_ID, APP_SECRET, fake.base_url)
        assert await api.send_text("o1", "一") and await api.send_text("o1", "二")
        assert fake.token_requests == 1
        fake.expire_token()  # e.g. another process fetched a new token
        assert await api.send_text("o1", "三")
        assert fake.token_requests == 2 and fake.refused == [42001]
        assert not await WeChatApi(APP_ID, "wrong", fake.base_url).send_text("o1", "四")

    with FakeWeChat(APP_ID, APP_SECRET) as fake:
        asyncio.run(run(fake))
        assert fake.texts_to("o1") == ["一", "二", "三"]


def test_slow_or_long_answers_go_through_the_customer_service_api():
    async def run(fake: FakeWeChat) -> None:
        channel = WeChatInput(APP_ID, APP_SECRET, TOKEN, api_base_url=fake.base_url, reply_timeout=0.3)
        request = SimpleNamespace(args={"nonce": "n"})
        msg = parse_message(text_xml("o1", "你好", 1))

        async def slow(*_):
            await asyncio.sleep(0.6)
            return [{"text": "慢的回答", "buttons": [{"title": "是", "payload": "/affirm"}]}]

        channel._answer = slow
        resp = await channel._respond(request, msg, {"FromUserName": "o1"}, None)
        assert resp.body == b"success"
        await asyncio.sleep(1.0)
        assert fake.texts_to("o1") == ["慢的回答\n回复数字：1. 是"]
        assert channel.memory.resolve("o1", "1") == "/affirm"

        async def long(*_):
            return [{"text": "很长" * 400}, {"text": "第二条"}]

        channel._answer = long
        assert (await channel._respond(request, msg, {"FromUserName": "o2"}, None)).body == b"success"
        await asyncio.sleep(0.5)
        assert fake.texts_to("o2") == ["很长" * 400, "第二条"]

    with FakeWeChat(APP_ID, APP_SECRET) as fake:
        asyncio.run(run(fake))


# -- hostile input -----------------------------------------------------------------------------------

def _raw_post(env, body: bytes) -> requests.Response:
    return requests.post(env.plain.url, params=signed_query(TOKEN), data=body, timeout=30)


@live
@pytest.mark.parametrize("body", [
    b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</xml>",  # deeply nested
    b"<xml><Content>\xff\xfe</Content></xml>",  # invalid UTF-8
    b"\x00\x01\x02", b"<xml><ToUserName>a</ToUserName>" + b"<x/>" * 20000 + b"</xml>",  # oversized
    b'<?xml version="1.0" encoding="utf-16"?><xml></xml>',
], ids=["nested", "utf8", "binary", "oversized", "utf16"])
def test_hostile_bodies_are_4xx_without_a_trace(env, body):
    resp = _raw_post(env, body)
    assert 400 <= resp.status_code < 500 and "Traceback" not in resp.text


@live
def test_a_replayed_request_outside_the_time_window_is_refused(env):
    user = openid()
    old = int(time.time()) - 3600  # captured an hour ago, signature still valid for that timestamp
    assert env.plain.post(text_xml(user, SMS_QUESTION, next(_ids)), timestamp=old).status_code == 403
    assert user_turns(env, user) == []


@live
def test_invisible_characters_and_a_secret_in_a_wechat_message(env):
    user = openid()
    answer = env.plain.text(user, "验证码\u200b 482913\u202e 收不到怎么办")
    assert "官方客服绝不会" in answer
    assert all("482913" not in turn for turn in user_turns(env, user))
