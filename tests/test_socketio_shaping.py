"""The socket.io channel's help for stock widgets, without a server: start requests, the
returning session, buttons on the last message, Markdown line breaks, the origin check."""
from __future__ import annotations

import asyncio
import logging

import pytest

from bot.channels.socketio import GREETING, returning_session, start_text
from bot.channels.socketio_origin import SETTING, OriginCheck
from bot.channels.socketio_output import TurnOutput, markdown_breaks, reply_payload, shaped
from bot.faq.render import render_question
from bot.faq.store import shared_store
from bot.security.tokens import issue_session


@pytest.mark.parametrize("message", [None, "", "   ", "/get_started", "/greet", "/start", " /get_started ",
                                     "/GET_STARTED", '/get_started{"lang": "zh"}'])
def test_start_requests_are_the_greeting(message):
    assert start_text(message) == GREETING


@pytest.mark.parametrize("message", ["你好", "/affirm", "/get_startedx", "get_started", "/greeting", 5, ["/greet"],
                                     "/contact_human"])
def test_anything_else_is_not_a_start_request(message):
    assert start_text(message) is None


def test_the_signed_token_is_the_session_id_a_stock_widget_sends_back():
    session, token = issue_session()
    assert returning_session({"session_id": token}) == (session, token)  # rasa-webchat, Rasa's widget
    assert returning_session({"token": token}) == (session, token)  # our widget
    assert returning_session({"token": "forged", "session_id": token}) == (session, token)
    assert returning_session({"session_id": session}) is None  # the bare id (leaked?) proves nothing
    assert returning_session({"session_id": token[:-2] + "AA"}) is None  # forged signature
    assert returning_session({"session_id": "3f1c0b5e9d2a4e4c8b7a6f5e4d3c2b1a"}) is None  # a client's own uuid
    for junk in ({}, {"session_id": None}, {"session_id": 5}, {"session_id": ["x"]}, {"token": {"a": 1}}):
        assert returning_session(junk) is None


def test_markdown_breaks_keep_single_line_breaks_and_paragraphs():
    assert markdown_breaks("步骤：\n1. 打开钱包\n2. 点击“我的”") == "步骤：  \n1. 打开钱包  \n2. 点击“我的”"
    assert markdown_breaks("第一段\n\n第二段\n第二行") == "第一段\n\n第二段  \n第二行"
    assert markdown_breaks("行尾有空格   \n下一行") == "行尾有空格  \n下一行"
    assert markdown_breaks("没有换行") == "没有换行"


def faq_answer():
    """A real FAQ answer with related-question buttons, then 是/否 (as the action sends it)."""
    faq = shared_store().get()
    topic = faq.topics["refund"]
    question = next(q for q in topic.questions if q.related)
    return render_question(faq, topic, question, [], ask_resolved=True)


def as_socketio(messages):
    """What Rasa's SocketIOOutput makes of each message (buttons become quick_replies)."""
    return [reply_payload(m) for m in messages]


def test_every_button_rides_on_the_last_message():
    messages = faq_answer()
    assert len(messages) >= 2 and messages[-2].get("buttons") and messages[-1].get("buttons")
    out = shaped(as_socketio(messages))
    assert len(out) == len(messages)
    assert all("quick_replies" not in p for p in out[:-1])
    last = [b["payload"] for b in out[-1]["quick_replies"]]
    own = [b["payload"] for b in messages[-1]["buttons"]]
    earlier = [b["payload"] for m in messages[:-1] for b in m.get("buttons") or []]
    assert last == own + [p for p in earlier if p not in own]  # 是/否 first, then the related questions
    assert out[-1]["text"] == messages[-1]["text"]


def test_shaping_keeps_metadata_drops_duplicate_payloads_and_leaves_buttonless_turns_alone():
    payloads = [{"text": "a", "quick_replies": [{"content_type": "text", "title": "X", "payload": "/x"}]},
                {"text": "b\nc", "metadata": {"from": "system"},
                 "quick_replies": [{"content_type": "text", "title": "X", "payload": "/x"}]}]
    out = shaped(payloads)
    assert out == [{"text": "a"}, {"text": "b  \nc", "metadata": {"from": "system"},
                                   "quick_replies": [{"content_type": "text", "title": "X", "payload": "/x"}]}]
    assert payloads[0]["quick_replies"]  # the input is not changed
    assert shaped([{"text": "a"}, {"text": "b"}]) == [{"text": "a"}, {"text": "b"}]
    assert shaped([]) == []
    image = {"attachment": {"type": "image", "payload": {"src": "x.png"}}}
    assert shaped([{"text": "t", "quick_replies": [{"title": "Y", "payload": "/y"}]}, image]) == \
        [{"text": "t", "quick_replies": [{"title": "Y", "payload": "/y"}]}, image]


class FakeSio:
    """Records emits (the only thing TurnOutput asks of python-socketio's server)."""

    def __init__(self):
        self.emitted = []

    async def emit(self, event, data=None, room=None, **_):
        self.emitted.append((event, data, room))


def test_a_turn_is_sent_at_its_end_in_order_with_the_relays_replies_last():
    async def scenario():
        sio = FakeSio()
        output = TurnOutput(sio, "bot_uttered")
        await output.send_text_with_buttons("conv", "答案\n第二行", [{"title": "相关", "payload": "/refund"}])
        await output.send_text_with_buttons("conv", "解决了吗？", [{"title": "是", "payload": "/affirm"}])
        held = list(sio.emitted)
        await output.flush("conv", [{"text": "排队提示", "metadata": {"from": "system"}}])
        return held, sio.emitted

    held, emitted = asyncio.run(scenario())
    assert held == []  # nothing before the turn is over
    assert [(e, d["text"], r) for e, d, r in emitted] == [
        ("bot_uttered", "答案  \n第二行", "conv"), ("bot_uttered", "解决了吗？", "conv"), ("bot_uttered", "排队提示", "conv")]
    assert [b["payload"] for b in emitted[-1][1]["quick_replies"]] == ["/refund", "/affirm"]  # in order


def test_the_origin_check_allows_own_and_listed_origins_and_logs_a_refusal_once(caplog):
    environ = {"wsgi.url_scheme": "http", "HTTP_HOST": "bot.example.com:5005"}
    check = OriginCheck(["https://shop.example.com"])
    assert check("http://bot.example.com:5005", environ)  # the demo page on the Rasa server itself
    assert check("https://shop.example.com", environ) and check("https://shop.example.com/", environ)
    assert not check(None, environ) and not check("", environ)
    with caplog.at_level(logging.WARNING, logger="bot.channels.socketio_origin"):
        assert not check("https://evil.example", environ)
        assert not check("https://evil.example", environ)  # a retry: not logged again
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "'https://evil.example'" in refusals[0] and SETTING in refusals[0] and "cors_allowed_origins" in SETTING
    behind_proxy = {**environ, "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "bot.example.com"}
    assert OriginCheck()("https://bot.example.com", behind_proxy)
    assert not OriginCheck()("https://shop.example.com", environ)
    assert OriginCheck(["*"])("https://anything.example", environ)
