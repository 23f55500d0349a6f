"""The rasa-sdk actions with tracker fixtures (no server needed)."""
import asyncio

from actions.faq_actions import ActionAnswerFaq, ActionGreet, ActionResolved
from actions.handoff_actions import ActionHandoff, ActionNotSolved, ActionNotUnderstood, ActionOutOfScope
from bot.handoff.store import TicketStore
from bot.faq.model import load_faq
from tests.conftest import ROOT, make_tracker


def run(action, dispatcher, tracker):
    return asyncio.run(action.run(dispatcher, tracker, {}))


def texts(dispatcher):
    return [m["text"] for m in dispatcher.messages]


def tickets(url):
    keys = ("number", "reason", "intent", "recent_messages", "channel")
    return [tuple(t[k] for k in keys) for t in TicketStore(url).queue()]


def test_answer_faq_with_variant_and_slot(dispatcher):
    tracker = make_tracker(
        "退到银行卡要多久", "refund", entities=[{"entity": "payment_channel", "value": "银行卡"}]
    )
    events = run(ActionAnswerFaq(), dispatcher, tracker)
    assert "工作日" in texts(dispatcher)[0]
    assert texts(dispatcher)[-1] == "这个回答解决您的问题了吗？"
    assert events == [{"event": "slot", "timestamp": None, "name": "last_topic", "value": "refund"}]


def test_report_fraud_urgent_first_then_a_top_priority_ticket(dispatcher, handoff_db):
    events = run(ActionAnswerFaq(), dispatcher, make_tracker("有客服让我转到安全账户", "report_fraud", channel="rest"))
    assert "验证码" in texts(dispatcher)[0]
    assert "这个回答解决您的问题了吗？" not in texts(dispatcher)
    assert any("工单号" in t for t in texts(dispatcher))
    assert events[-1]["event"] == "pause"
    (number, reason, intent, _recent, _channel), = tickets(handoff_db)
    assert (reason, intent) == ("scam_signal", "report_fraud")
    other = make_tracker("转人工", "contact_human", channel="rest", sender_id="someone-else")
    run(ActionHandoff(), dispatcher, other)
    assert tickets(handoff_db)[0][0] == number  # the fraud ticket stays first in the queue


def test_long_message_is_acknowledged(dispatcher):
    run(ActionAnswerFaq(), dispatcher, make_tracker("退款" * 400, "refund"))
    assert "比较长" in texts(dispatcher)[0]


def test_conversation_replies_come_from_the_faq(dispatcher):
    run(ActionGreet(), dispatcher, make_tracker("你好", "greet"))
    run(ActionResolved(), dispatcher, make_tracker("是", "affirm"))
    assert "钱包小助手" in texts(dispatcher)[0] and len(texts(dispatcher)) == 2


def test_contact_human_opens_one_ticket_with_context(dispatcher, handoff_db):
    earlier = [{"event": "user", "text": "我的退款还没到"}, {"event": "bot", "text": "…"}]
    tracker = make_tracker("转人工", "contact_human", events=earlier, channel="rest")
    run(ActionHandoff(), dispatcher, tracker)
    run(ActionHandoff(), dispatcher, tracker)
    rows = tickets(handoff_db)
    assert len(rows) == 1
    number, reason, intent, recent, channel = rows[0]
    assert (reason, intent, channel) == ("contact_human", "contact_human", "rest")
    assert "我的退款还没到" in recent
    assert number in texts(dispatcher)[0] and "已有" in texts(dispatcher)[-1]


def test_first_no_offers_a_person_second_hands_off(dispatcher, handoff_db):
    answered = [{"event": "action", "name": "action_answer_faq"}]
    first = make_tracker("否", "deny", slots={"last_topic": "refund"}, events=answered)
    assert run(ActionNotSolved(), dispatcher, first) == []
    assert dispatcher.messages[0]["buttons"] == [{"title": "转人工", "payload": "/contact_human"}]
    assert tickets(handoff_db) == []
    earlier = answered + [
        {"event": "user", "text": "否", "parse_data": {"intent": {"name": "deny"}}},
        {"event": "action", "name": "action_not_solved"},
    ]
    second = make_tracker("还是没用", "deny", slots={"last_topic": "refund"}, events=earlier)
    events = run(ActionNotSolved(), dispatcher, second)
    assert events == [{"event": "pause", "timestamp": None}]
    assert tickets(handoff_db)[0][1:3] == ("not_solved", "refund")


def test_asking_for_a_person_twice_overrides_a_confident_topic(dispatcher, handoff_db):
    earlier = [{"event": "user", "text": "我要人工", "parse_data": {"intent": {"name": "contact_human"}}}]
    tracker = make_tracker("人工客服电话打不通", "service_unreachable", 0.97, events=earlier)
    run(ActionAnswerFaq(), dispatcher, tracker)
    assert tickets(handoff_db)[0][1] == "contact_human"


def test_low_confidence_close_topics_asks_first(dispatcher, handoff_db):
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.55},
        {"name": "refund", "confidence": 0.42},
        {"name": "payment_failure", "confidence": 0.38},
    ]
    tracker = make_tracker("钱的事情", "nlu_fallback", 0.55, ranking=ranking)
    run(ActionNotUnderstood(), dispatcher, tracker)
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]][:2] == ["/refund", "/payment_failure"]
    assert tickets(handoff_db) == []


def test_low_confidence_after_clarifying_says_so_and_offers_a_person_first(dispatcher, handoff_db):
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.55},
        {"name": "refund", "confidence": 0.42},
        {"name": "payment_failure", "confidence": 0.38},
    ]
    earlier = [
        {"event": "user", "text": "钱的事情"},
        {"event": "action", "name": "action_not_understood"},
        {"event": "action", "name": "action_listen"},
    ]
    tracker = make_tracker("都不是", "nlu_fallback", 0.55, ranking=ranking, events=earlier)
    assert run(ActionNotUnderstood(), dispatcher, tracker) == []
    (message,) = dispatcher.messages
    assert "还是没能理解" in message["text"]
    assert message["buttons"][0] == {"title": "转人工", "payload": "/contact_human"}  # offered, not forced
    assert tickets(handoff_db) == []


def test_not_understood_offers_the_closest_questions_and_a_person(dispatcher, handoff_db):
    tracker = make_tracker("提现好几天了钱还没到卡上", "nlu_fallback", 0.4, ranking=[{"name": "nlu_fallback", "confidence": 0.4}])
    assert run(ActionNotUnderstood(), dispatcher, tracker) == []
    (message,) = dispatcher.messages
    assert "还不会回答" in message["text"]
    payloads = [b["payload"] for b in message["buttons"]]
    assert payloads[-1] == "/contact_human" and len(payloads) >= 2
    assert any(p.startswith('/withdrawal{"question_id":"withdrawal.') for p in payloads)
    assert tickets(handoff_db) == []


def test_off_topic_gets_a_polite_answer_and_no_ticket(dispatcher, handoff_db):
    assert run(ActionOutOfScope(), dispatcher, make_tracker("你喜欢看电影吗", "out_of_scope")) == []
    (message,) = dispatcher.messages
    payloads = [b["payload"] for b in message["buttons"]]
    assert "/withdrawal" in payloads and payloads[-1] == "/contact_human"
    assert tickets(handoff_db) == []


def test_a_specific_question_gets_its_own_short_answer_and_id(dispatcher):
    faq = load_faq(ROOT / "data" / "faq.yml")
    question = faq.question("withdrawal.arrival_time")
    run(ActionAnswerFaq(), dispatcher, make_tracker(question.phrasings[0], "withdrawal"))
    answer = dispatcher.messages[0]
    assert answer["text"] == question.answer.strip() or answer["text"].startswith(question.answer.strip()[:20])
    assert answer["faq_id"] == "withdrawal.arrival_time"
    assert texts(dispatcher)[-1] == "这个回答解决您的问题了吗？"


def test_unclear_question_gets_the_overview_and_did_you_mean(dispatcher):
    faq = load_faq(ROOT / "data" / "faq.yml")
    run(ActionAnswerFaq(), dispatcher, make_tracker("提现", "withdrawal"))
    overview, did_you_mean, resolved = dispatcher.messages
    assert overview["faq_id"] == "withdrawal" and overview["text"].startswith(faq.topics["withdrawal"].answer[:10])
    assert did_you_mean["text"] == "您是不是想问："
    assert len(did_you_mean["buttons"]) == 3
    assert all(b["payload"].startswith('/withdrawal{"question_id":"withdrawal.') for b in did_you_mean["buttons"])


def test_a_did_you_mean_button_answers_that_question(dispatcher):
    entities = [{"entity": "question_id", "value": "withdrawal.arrival_time"}]
    run(ActionAnswerFaq(), dispatcher, make_tracker('/withdrawal{"question_id":"withdrawal.arrival_time"}',
                                                   "withdrawal", entities=entities))
    assert dispatcher.messages[0]["faq_id"] == "withdrawal.arrival_time"


def test_emoji_only_and_empty_get_polite_prompts(dispatcher, handoff_db):
    run(ActionNotUnderstood(), dispatcher, make_tracker("😀🎉", "nlu_fallback", 1.0, ranking=[]))
    run(ActionNotUnderstood(), dispatcher, make_tracker("   ", "nlu_fallback", 1.0, ranking=[]))
    assert "表情" in texts(dispatcher)[0] and "还没有输入" in texts(dispatcher)[1]
    assert tickets(handoff_db) == []
