import os
import shutil
import time

import pytest
import yaml

from bot.faq.model import FaqError, load_faq
from bot.faq.render import render_clarify, render_topic
from bot.faq.store import FaqStore
from bot.topics import FAQ_TOPICS, MUST_OFFER_HUMAN
from tests.conftest import ROOT

FAQ = ROOT / "data" / "faq.yml"


@pytest.fixture
def faq():
    return load_faq(FAQ)


@pytest.fixture
def faq_copy(tmp_path):
    path = tmp_path / "faq.yml"
    shutil.copy(FAQ, path)
    return path


def _edit(path, change):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_every_topic_has_an_answer(faq):
    assert set(faq.topics) == set(FAQ_TOPICS)
    for topic in faq.topics.values():
        assert topic.title and len(topic.answer) > 30


def test_brand_is_one_setting(faq):
    assert "{brand}" not in faq.message("greet")
    assert faq.settings["brand"] in faq.message("greet")


def test_money_and_safety_topics_offer_a_human(faq):
    for name in MUST_OFFER_HUMAN:
        messages = render_topic(faq, faq.topics[name], [])
        payloads = [b["payload"] for m in messages for b in m.get("buttons", [])]
        assert "/contact_human" in payloads, name


def test_report_fraud_gives_urgent_safety_steps_first(faq):
    first = render_topic(faq, faq.topics["report_fraud"], [])[0]["text"]
    assert "验证码" in first and ("冻结" in first) and ("110" in first or "报警" in first)


def test_answer_then_resolved_question_with_yes_no(faq):
    messages = render_topic(faq, faq.topics["login_failure"], [])
    assert messages[-1]["text"] == "这个回答解决您的问题了吗？"
    assert [b["payload"] for b in messages[-1]["buttons"]][:2] == ["/affirm", "/deny"]
    related = [b["payload"] for b in messages[0]["buttons"]]
    assert related and all(p[1:] in FAQ_TOPICS for p in related)


def test_variant_chosen_by_entity(faq):
    refund = faq.topics["refund"]
    bank = refund.answer_for([{"entity": "payment_channel", "value": "银行卡"}])
    balance = refund.answer_for([{"entity": "payment_channel", "value": "余额"}])
    assert bank != balance != refund.answer
    assert refund.answer_for([{"entity": "bank", "value": "工商银行"}]) == refund.answer


def test_clarify_offers_two_topics_and_a_human(faq):
    buttons = render_clarify(faq, ["refund", "payment_failure"])[0]["buttons"]
    assert [b["payload"] for b in buttons] == ["/refund", "/payment_failure", "/contact_human"]


def test_malformed_yaml_names_file_and_line(faq_copy):
    faq_copy.write_text("topics:\n  refund: [unclosed\n", encoding="utf-8")
    with pytest.raises(FaqError) as err:
        load_faq(faq_copy)
    assert str(faq_copy) in str(err.value) and "line" in str(err.value)


@pytest.mark.parametrize(
    "change,expected",
    [
        (lambda d: d["topics"]["refund"].pop("answer"), "topic 'refund': field 'answer'"),
        (lambda d: d["topics"]["refund"].update(related=["nope"]), "topic 'refund': field 'related'"),
        (lambda d: d["topics"]["complaint"].update(offer_human=False), "topic 'complaint': field 'offer_human'"),
        (lambda d: d["topics"]["report_fraud"].pop("urgent"), "topic 'report_fraud': field 'urgent'"),
        (lambda d: d["topics"].pop("feedback"), "missing answers for topic(s) ['feedback']"),
        (lambda d: d["topics"].update(loans={"title": "x", "answer": "y"}), "topic 'loans'"),
        (lambda d: d["messages"].update(handoff_opened="no placeholder"), "{ticket}"),
        (lambda d: d["topics"]["refund"].update(answer="bad {brand"), "placeholder"),
        (lambda d: d["settings"].update(brand=""), "field 'brand'"),
    ],
)
def test_validation_errors_name_topic_and_field(faq_copy, change, expected):
    _edit(faq_copy, change)
    with pytest.raises(FaqError) as err:
        load_faq(faq_copy)
    assert expected in str(err.value)


def test_store_reloads_after_edit_and_keeps_last_good_version(faq_copy):
    store = FaqStore(faq_copy, check_every=0)
    assert "新的退款回答" not in store.get().topics["refund"].answer
    _edit(faq_copy, lambda d: d["topics"]["refund"].update(answer="新的退款回答：请在订单页申请。"))
    os.utime(faq_copy, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert store.get().topics["refund"].answer == "新的退款回答：请在订单页申请。"
    faq_copy.write_text("topics: [broken", encoding="utf-8")
    os.utime(faq_copy, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert store.get().topics["refund"].answer == "新的退款回答：请在订单页申请。"


SENSITIVE_ASKS = ("请提供", "请告诉我", "请发送", "发给我", "告诉我您的", "请输入您的")
SECRETS = ("密码", "验证码", "卡号", "CVV", "身份证号")


def test_no_answer_asks_for_secrets(faq):
    texts = list(faq.messages.values())
    for topic in faq.topics.values():
        texts += [topic.answer, topic.urgent or ""]
        texts += list(topic.variants.answers.values()) if topic.variants else []
    for text in texts:
        for sentence in text.replace("\n", "。").split("。"):
            if any(a in sentence for a in SENSITIVE_ASKS):
                assert not any(s in sentence for s in SECRETS), sentence
