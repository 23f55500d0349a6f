"""Labelled questions asked verbatim get their label (the FAQ loop's fast update)."""
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.known_questions import KnownQuestionClassifier, known_questions, question_key


def test_key_ignores_spaces_and_punctuation():
    assert question_key("刷脸 支付，老是识别不出来？") == question_key("刷脸支付老是识别不出来")
    assert question_key(None) == ""


def test_a_text_labelled_twice_differently_is_left_to_the_models():
    table = known_questions([("退款多久到账", "refund"), ("退款多久到账？", "refund"),
                             ("钱没了", "refund"), ("钱没了", "payment_failure"), ("", "refund")])
    assert table == {"退款多久到账": "refund"}


def test_a_known_question_overrides_the_fallback_and_others_are_untouched():
    component = KnownQuestionClassifier(None, None, {"刷脸支付老是识别不出来": "payment_failure"})
    fallback = {"name": "nlu_fallback", "confidence": 0.45}
    known = Message({TEXT: "刷脸支付，老是识别不出来", INTENT: fallback,
                     INTENT_RANKING_KEY: [fallback, {"name": "login_failure", "confidence": 0.3}]})
    other = Message({TEXT: "退款多久到账", INTENT: {"name": "refund", "confidence": 0.9}})
    component.process([known, other])
    assert known.get(INTENT) == {"name": "payment_failure", "confidence": 1.0}
    assert [r["name"] for r in known.get(INTENT_RANKING_KEY)] == ["payment_failure", "nlu_fallback", "login_failure"]
    assert other.get(INTENT) == {"name": "refund", "confidence": 0.9}
