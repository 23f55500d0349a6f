"""The Telegram channel end to end: real Rasa, action server and agent console, with the Bot API
replaced by a local fake that records what would have been sent. Updates are shaped like the
ones Telegram posts to a webhook."""
from __future__ import annotations

import itertools
import time
from typing import Any, Dict, List, Optional

import pytest
import requests

from bot.security.tokens import api_headers
from bot.channels.telegram import MAX_MESSAGE_UNITS, TEXT_ONLY, inline_keyboard, split_text
from bot.handoff.store import TicketStore
from bot.faq.model import load_faq
from tests.conftest import ROOT, require_model
from tests.fake_telegram import FakeTelegram
from tests.servers import ConsoleAgent, running_assistant

# The first line of the answer to "短信验证码一直收不到怎么办" (its specific FAQ question).
SMS_ANSWER = load_faq(ROOT / "data" / "faq.yml").question("forgot_password.no_sms_code").answer.splitlines()[0]


def live(test):
    """Tests that talk to the running assistant (fixture `tg`) need its servers and the trained
    model; the in-process ones (no fixture) belong to the fast lane."""
    return pytest.mark.server(pytest.mark.model(test))


TOKEN = "123456789:AAFakeTokenForTests_abcdefghijklmno"
SECRET = "s3cret-Telegram_token"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
_update_ids = itertools.count(700_000_000)
_chat_ids = itertools.count(5_000_000_001)


@pytest.fixture(scope="module")
def tg(tmp_path_factory):
    require_model()
    fake = FakeTelegram(TOKEN).start()
    workdir = tmp_path_factory.mktemp("telegram")
    credentials = workdir / "credentials.yml"
    credentials.write_text(
        "bot.channels.rest.WalletRestInput:\n"
        "bot.channels.telegram.WalletTelegramInput:\n"
        "  access_token: ${TELEGRAM_TOKEN}\n"
        "  verify: ${TELEGRAM_BOT_USERNAME}\n"
        "  webhook_url: https://bot.example.com/webhooks/telegram/webhook\n"
        "  secret_token: ${TELEGRAM_SECRET_TOKEN}\n"
        "  api_base_url: ${TELEGRAM_API_BASE_URL}\n",
        encoding="utf-8",
    )
    env = {"TELEGRAM_TOKEN": TOKEN, "TELEGRAM_BOT_USERNAME": fake.username,
           "TELEGRAM_SECRET_TOKEN": SECRET, "TELEGRAM_API_BASE_URL": fake.url}
    try:
        with running_assistant(workdir, credentials=str(credentials), extra_env=env) as urls:
            yield {**urls, "fake": fake, "webhook": f"{urls['rasa']}/webhooks/telegram/webhook"}
    finally:
        fake.stop()


def user(chat_id: int) -> Dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "小明", "username": "xiaoming", "language_code": "zh-hans"}


def message_update(chat_id: int, text: Optional[str] = None, kind: str = "message", **extra: Any) -> Dict[str, Any]:
    message = {"message_id": next(_update_ids) % 100000, "from": user(chat_id),
               "chat": {"id": chat_id, "first_name": "小明", "username": "xiaoming", "type": "private"},
               "date": int(time.time()), **extra}
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    if kind == "edited_message":
        message["edit_date"] = int(time.time())
    return {"update_id": next(_update_ids), kind: message}


def callback_update(chat_id: int, data: str, offered: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"update_id": next(_update_ids), "callback_query": {
        "id": str(next(_update_ids)), "from": user(chat_id), "chat_instance": "-123456789", "data": data,
        "message": {"message_id": 77, "date": int(time.time()), "text": "这个回答解决您的问题了吗？",
                    "from": {"id": 42, "is_bot": True, "first_name": "钱包小助手", "username": "wallet_helper_bot"},
                    "chat": {"id": chat_id, "type": "private", "first_name": "小明"},
                    "reply_markup": inline_keyboard(offered)}}}


def post(tg, update: Dict[str, Any], headers: Dict[str, str] = HEADERS) -> requests.Response:
    return requests.post(tg["webhook"], json=update, headers=headers, timeout=60)


def say(tg, chat_id: int, text: str) -> List[Dict[str, Any]]:
    """Posts a text update and returns the sendMessage calls it caused."""
    before = len(tg["fake"].calls_to("sendMessage", chat_id))
    r = post(tg, message_update(chat_id, text))
    assert r.status_code == 200, r.text
    return tg["fake"].calls_to("sendMessage", chat_id)[before:]


def buttons_of(call: Dict[str, Any]) -> List[Dict[str, str]]:
    return [b for row in (call.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]


def test_split_text_respects_the_limit_and_prefers_boundaries():
    paragraph = "余额提现一般两小时内到账。" * 100  # 1300 chars
    chunks = split_text("\n\n".join([paragraph] * 5))
    assert len(chunks) > 1 and all(len(c.encode("utf-16-le")) // 2 <= MAX_MESSAGE_UNITS for c in chunks)
    assert all(c.endswith("。") for c in chunks)
    assert "".join(chunks).replace("\n", "") == paragraph * 5  # nothing lost
    assert chunks[0] == "\n\n".join([paragraph] * 3)  # cut between paragraphs
    emoji = split_text("💰" * 5000)  # outside the BMP: two UTF-16 units each
    assert [len(c) for c in emoji] == [2048, 2048, 904]
    assert split_text("短消息") == ["短消息"] and split_text("   ") == []
    long_payload = inline_keyboard([{"title": "查询退款", "payload": '/faq_refund{"order":"' + "9" * 80 + '"}'}])
    assert long_payload["inline_keyboard"][0][0]["callback_data"] == "查询退款"


@live
def test_startup_checks_token_once_and_registers_secret(tg):
    fake = tg["fake"]
    hook = fake.wait_for(lambda: fake.calls_to("setWebhook"))
    assert hook[0]["secret_token"] == SECRET and hook[0]["url"].endswith("/webhooks/telegram/webhook")
    assert "callback_query" in hook[0]["allowed_updates"]
    get_me = len(fake.calls_to("getMe"))
    say(tg, next(_chat_ids), "你好")
    assert len(fake.calls_to("getMe")) == get_me == 1  # no round trip per update


@live
def test_faq_answer_with_inline_keyboard(tg):
    chat = next(_chat_ids)
    sent = say(tg, chat, "短信验证码一直收不到怎么办")
    assert SMS_ANSWER in "\n".join(s["text"] for s in sent)
    keyboards = [s for s in sent if buttons_of(s)]
    assert keyboards and all(len(row) == 1 for row in keyboards[-1]["reply_markup"]["inline_keyboard"])
    assert all(len(s["text"]) <= MAX_MESSAGE_UNITS for s in sent)


@live
def test_forged_or_missing_secret_is_refused_and_nothing_sent(tg):
    chat = next(_chat_ids)
    assert post(tg, message_update(chat, "收不到验证码"), {"X-Telegram-Bot-Api-Secret-Token": "forged"}).status_code == 403
    assert post(tg, message_update(chat, "收不到验证码"), {}).status_code == 403
    time.sleep(0.5)
    assert tg["fake"].calls_to("sendMessage", chat) == []
    tracker = requests.get(f"{tg['rasa']}/conversations/{chat}/tracker", headers=api_headers(), timeout=10).json()
    assert not [e for e in tracker["events"] if e["event"] == "user"]


@live
def test_duplicate_update_is_processed_once(tg):
    chat = next(_chat_ids)
    update = message_update(chat, "怎么修改绑定的手机号")
    assert post(tg, update).status_code == 200
    first = len(tg["fake"].calls_to("sendMessage", chat))
    assert first > 0
    assert post(tg, update).status_code == 200
    time.sleep(0.5)
    assert len(tg["fake"].calls_to("sendMessage", chat)) == first
    tracker = requests.get(f"{tg['rasa']}/conversations/{chat}/tracker", headers=api_headers(), timeout=10).json()
    assert len([e for e in tracker["events"] if e["event"] == "user"]) == 1


@live
def test_button_press_is_answered_and_processed(tg):
    chat = next(_chat_ids)
    sent = say(tg, chat, "短信验证码一直收不到怎么办")
    offered = buttons_of([s for s in sent if buttons_of(s)][-1])
    press = callback_update(chat, offered[0]["callback_data"], [{"title": b["text"], "payload": b["callback_data"]}
                                                                  for b in offered])
    before = len(tg["fake"].calls_to("sendMessage", chat))
    assert post(tg, press).status_code == 200
    answered = [c for c in tg["fake"].calls_to("answerCallbackQuery")
                if c["callback_query_id"] == press["callback_query"]["id"]]
    assert len(answered) == 1
    assert len(tg["fake"].calls_to("sendMessage", chat)) > before
    tracker = requests.get(f"{tg['rasa']}/conversations/{chat}/tracker", headers=api_headers(), timeout=10).json()
    assert [e for e in tracker["events"] if e["event"] == "user"][-1]["text"] == offered[0]["callback_data"]


@live
def test_forged_button_payload_is_not_processed(tg):
    chat = next(_chat_ids)
    press = callback_update(chat, '/report_fraud{"amount":"999"}', [{"title": "是", "payload": "/affirm"}])
    assert post(tg, press).status_code == 200
    assert tg["fake"].calls_to("answerCallbackQuery")[-1]["callback_query_id"] == press["callback_query"]["id"]
    assert "失效" in tg["fake"].texts(chat)[-1]
    tracker = requests.get(f"{tg['rasa']}/conversations/{chat}/tracker", headers=api_headers(), timeout=10).json()
    assert not [e for e in tracker["events"] if e["event"] == "user"]


@live
def test_sticker_and_photo_get_a_polite_text_answer(tg):
    chat = next(_chat_ids)
    sticker = {"file_id": "CAACAgIAAxkBAAEB", "file_unique_id": "AgADBQAD", "type": "regular", "width": 512,
               "height": 512, "is_animated": False, "is_video": False, "emoji": "😀"}
    assert post(tg, message_update(chat, sticker=sticker)).status_code == 200
    photo = [{"file_id": "AgACAgUAAxkBAAIC", "file_unique_id": "AQADx", "width": 90, "height": 67, "file_size": 1234}]
    assert post(tg, message_update(chat, photo=photo)).status_code == 200
    assert tg["fake"].texts(chat) == [TEXT_ONLY, TEXT_ONLY]


@live
def test_edited_message_is_answered_without_error(tg):
    chat = next(_chat_ids)
    say(tg, chat, "收不到验证马")
    before = len(tg["fake"].calls_to("sendMessage", chat))
    r = post(tg, message_update(chat, "短信验证码一直收不到怎么办", kind="edited_message"))
    assert r.status_code == 200
    assert SMS_ANSWER in "\n".join(tg["fake"].texts(chat)[before:])


@live
def test_start_command_is_a_greeting_and_unknown_updates_are_ignored(tg):
    chat = next(_chat_ids)
    assert say(tg, chat, "/start")
    tracker = requests.get(f"{tg['rasa']}/conversations/{chat}/tracker", headers=api_headers(), timeout=10).json()
    user_events = [e for e in tracker["events"] if e["event"] == "user"]
    assert user_events[-1]["text"] == "你好" and user_events[-1]["parse_data"]["intent"]["name"] == "greet"
    member = {"update_id": next(_update_ids), "my_chat_member": {"chat": {"id": chat, "type": "private"}}}
    assert post(tg, member).status_code == 200
    assert requests.post(tg["webhook"], data=b"{not json", headers=HEADERS, timeout=10).status_code == 200


@live
def test_failing_send_still_answers_200(tg):
    chat = next(_chat_ids)
    tg["fake"].failing_chats.add(str(chat))
    r = post(tg, message_update(chat, "短信验证码一直收不到怎么办"))
    assert r.status_code == 200
    tracker = requests.get(f"{tg['rasa']}/conversations/{chat}/tracker", headers=api_headers(), timeout=10).json()
    assert [e for e in tracker["events"] if e["event"] == "user"]  # the conversation still moved on


@live
def test_push_through_rasa_api_inside_the_event_loop(tg):
    """What the console does for an agent's reply: get_output_channel() runs inside Rasa's loop."""
    chat = next(_chat_ids)
    say(tg, chat, "你好")
    events = [{"event": "bot", "text": "【人工客服 小王】您好", "data": {"buttons": [{"title": "5 分", "payload": "5"}]}}]
    r = requests.post(f"{tg['rasa']}/conversations/{chat}/tracker/events", json=events, headers=api_headers(), timeout=30,
                      params={"output_channel": "telegram", "execute_side_effects": "true"})
    assert r.status_code == 200, r.text
    pushed = tg["fake"].calls_to("sendMessage", chat)[-1]
    assert pushed["text"] == "【人工客服 小王】您好" and buttons_of(pushed) == [{"text": "5 分", "callback_data": "5"}]


@live
def test_hand_off_over_telegram(tg):
    fake, chat = tg["fake"], next(_chat_ids)
    say(tg, chat, "转人工")
    ticket = TicketStore(tg["db_url"]).active_ticket(str(chat))
    assert ticket and ticket["channel"] == "telegram"
    number = ticket["number"]
    agent = ConsoleAgent(tg)
    agent.take(number, "您好，我是客服小王，正在为您核实")
    fake.wait_for(lambda: any("正在为您核实" in t for t in fake.texts(chat)), timeout=10)
    # while paused the user's message reaches the ticket and is acknowledged
    assert number in "\n".join(s["text"] for s in say(tg, chat, "好的，订单号 20261127001"))
    r = agent.post(number, "close", note="已处理")
    assert r.status_code == 200, r.text
    rating = fake.wait_for(lambda: [c for c in fake.calls_to("sendMessage", chat) if "打分" in c["text"]], timeout=10)
    assert "5" in [b["callback_data"] for b in buttons_of(rating[-1])]
    press = callback_update(chat, "5", [{"title": f"{n} 分", "payload": str(n)} for n in range(1, 6)])
    assert post(tg, press).status_code == 200
    assert "感谢您的评价" in "\n".join(fake.texts(chat)[-3:])
    assert TicketStore(tg["db_url"]).get(number)["rating"] == 5
    answer = say(tg, chat, "短信验证码一直收不到怎么办")
    assert SMS_ANSWER in "\n".join(s["text"] for s in answer) and any(buttons_of(s) for s in answer)


@live
@pytest.mark.parametrize("body", [
    b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b"[]", b'"x"', b'{"update_id": "x"}',
    b'{"update_id": 1, "message": "hi"}', b'{"update_id": 2, "message": {"chat": "x", "text": 5}}',
    b'{"update_id": 3, "message": {"chat": {"id": {"x": 1}, "type": "private"}, "text": "hi"}}',
    b'{"update_id": 4, "callback_query": []}', b'{"update_id": 5, "message": {"chat": {"id": 1}, "text": ["a"]}}',
], ids=range(11))
def test_hostile_updates_never_cause_a_5xx(tg, body):
    r = requests.post(tg["webhook"], data=body, headers={**HEADERS, "Content-Type": "application/json"}, timeout=60)
    assert r.status_code < 500 and "Traceback" not in r.text


@live
def test_still_answering_after_hostile_updates(tg):
    chat = next(_chat_ids)
    assert say(tg, chat, "退款一般几天到账")
