"""Each hand-off route, end to end over REST with the trained model: off-topic and not-understood
messages open no ticket; an explicit request and a scam report do (the scam report with the
urgent steps first); while queued the assistant still answers what it knows; once an agent has
claimed the ticket it is silent and the agent gets every message."""
import uuid

import pytest
import requests

from bot.handoff.store import TicketStore
from tests.conftest import require_model
from tests.servers import ConsoleAgent, running_assistant

pytestmark = [pytest.mark.server, pytest.mark.model]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_model()
    with running_assistant(tmp_path_factory.mktemp("routes")) as urls:
        yield urls


def chat(env, sender, message):
    r = requests.post(f"{env['rasa']}/webhooks/rest/webhook", json={"sender": sender, "message": message}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def texts(replies):
    return "\n".join(m.get("text", "") for m in replies)


def tickets_of(env, user):
    return [t for t in TicketStore(env["db_url"]).queue() if t["conversation_id"] == user]


def test_off_topic_small_talk_opens_no_ticket(env):
    user = f"u-{uuid.uuid4()}"
    for text in ("陪我聊聊天吧", "你喜欢看电影吗", "今天天气怎么样"):
        replies = chat(env, user, text)
        payloads = [b["payload"] for m in replies for b in m.get("buttons", [])]
        assert "/contact_human" in payloads, (text, replies)
    assert tickets_of(env, user) == []


def test_explicit_request_opens_a_ticket(env):
    user = f"u-{uuid.uuid4()}"
    replies = chat(env, user, "我要转人工客服")
    (ticket,) = tickets_of(env, user)
    assert ticket["reason"] == "contact_human" and ticket["number"] in texts(replies)


def test_scam_report_gets_urgent_steps_and_a_top_priority_ticket(env):
    user = f"u-{uuid.uuid4()}"
    replies = chat(env, user, "有人自称客服让我把钱转到安全账户")
    assert "验证码" in replies[0]["text"]
    (ticket,) = tickets_of(env, user)
    assert ticket["reason"] == "scam_signal" and ticket["number"] in texts(replies)


def test_answers_while_queued_then_silent_once_claimed(env):
    user = f"u-{uuid.uuid4()}"
    chat(env, user, "转人工")
    (ticket,) = tickets_of(env, user)
    replies = chat(env, user, "提现一般多久能到账")
    assert any((m.get("metadata") or {}).get("from") == "assistant" for m in replies), replies
    assert any((m.get("metadata") or {}).get("faq_id", "").startswith("withdrawal") for m in replies)
    assert "队列" in texts(replies) and "前面还有" in texts(replies)
    store = TicketStore(env["db_url"])
    roles = [(m["role"], m["text"]) for m in store.transcript(ticket["number"])]
    assert ("user", "提现一般多久能到账") in roles and roles[-1][0] == "bot"
    ConsoleAgent(env).take(ticket["number"], "您好，我来帮您看看")
    replies = chat(env, user, "提现一般多久能到账呢")
    assert not any((m.get("metadata") or {}).get("from") == "assistant" for m in replies)
    assert ticket["number"] in texts(replies)  # acknowledged for the agent
    assert ("user", "提现一般多久能到账呢") in [(m["role"], m["text"]) for m in store.transcript(ticket["number"])]
    replies = chat(env, user, "取消转人工")
    assert "取消转人工" in texts(replies)
