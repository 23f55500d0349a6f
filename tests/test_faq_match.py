"""Specific questions within a topic (bot/faq/match.py), on the real FAQ file."""
from __future__ import annotations

import shutil

import pytest

from bot.faq.match import closest_questions, pick_question
from bot.faq.model import FaqError, load_faq, parse_faq
from bot.faq.store import FaqStore
from tests.conftest import ROOT

FAQ = ROOT / "data" / "faq.yml"


@pytest.fixture(scope="module")
def faq():
    return load_faq(FAQ)


def test_the_contract_of_the_two_level_faq(faq):
    questions = [q for t in faq.topics.values() for q in t.questions]
    assert len(questions) >= 120
    assert all(len(t.questions) >= 4 for t in faq.topics.values())
    assert all(q.id.startswith(q.topic + ".") and q.answer and q.phrasings for q in questions)


def test_every_wording_picks_its_own_question(faq):
    wrong = [(q.id, text) for t in faq.topics.values() for q in t.questions
             for text in (q.question, *q.phrasings)
             if (pick_question(faq, t.name, text)[0] or q).id != q.id]
    assert wrong == []


def test_a_bare_topic_word_gets_the_overview_and_three_suggestions(faq):
    picked, ranked = pick_question(faq, "withdrawal", "提现")
    assert picked is None and len(ranked) >= 3
    assert all(m.question.topic == "withdrawal" for m in ranked)


@pytest.mark.parametrize("topic, text", [
    ("refund", "退款"), ("bank_card", "银行卡"), ("limits", "额度"), ("transfer", "关于转账"),
    ("account_frozen", "账户被冻结了"), ("payment_failure", "付款失败了"), ("transaction_records", "账单")])
def test_a_message_that_only_names_its_topic_gets_the_overview(faq, topic, text):
    """Such messages score 0.6-0.7 against some specific question, so a score threshold alone
    would answer it; the topic's overview phrasings win instead (they score higher)."""
    assert pick_question(faq, topic, text)[0] is None


def test_a_specific_question_beats_the_overview_phrasings(faq):
    assert pick_question(faq, "limits", "转账限额是多少")[0].id == "limits.transfer_daily"
    assert pick_question(faq, "withdrawal", "提现多久到账")[0].id == "withdrawal.arrival_time"


def test_a_close_call_is_answered_with_its_alternatives_as_buttons(faq):
    from bot.faq.answer import answer_messages
    from bot.faq.match import Match, close_calls

    a, b, c = faq.topics["withdrawal"].questions[:3]
    ranked = [Match(a, 0.7, 0.45), Match(b, 0.68, 0.40), Match(c, 0.5, 0.05)]
    assert close_calls(ranked) == [b]
    assert close_calls([Match(a, 0.9, 0.9), Match(b, 0.6, 0.05)]) == []
    # end to end: every answer's buttons are other questions of the FAQ, never the answered one
    for text in ("提现到账时间", "提现一直处理中"):
        messages = answer_messages(faq, faq.topics["withdrawal"], [], text, ask_resolved=False)
        answered = messages[-1]["metadata"]["faq_id"] if "metadata" in messages[-1] else None
        payloads = [b["payload"] for b in messages[-1].get("buttons", [])]
        assert answered and all(answered not in p for p in payloads)


def test_the_order_within_a_topic_comes_from_its_question_classifier(faq):
    from bot.faq.match import index_for

    ranked = index_for(faq).rank("withdrawal", "提现怎么还没到账啊")
    probabilities = [m.probability for m in ranked]
    assert probabilities == sorted(probabilities, reverse=True)
    assert abs(sum(probabilities) - 1) < 1e-6


def test_closest_questions_span_topics(faq):
    closest = closest_questions(faq, "转账转错人了能撤回吗")
    assert closest and closest[0].topic == "transfer"


def test_a_question_added_to_the_file_is_served_after_the_hot_reload(tmp_path):
    copy = tmp_path / "faq.yml"
    shutil.copy(FAQ, copy)
    store = FaqStore(copy, check_every=0)
    before = store.get()
    wording = "提现被银行退回来了钱去哪了"  # written for this test
    text = copy.read_text(encoding="utf-8").replace(
        "    questions:\n      - id: withdrawal.",
        "    questions:\n      - id: withdrawal.bounced_back\n        question: 提现被退回了怎么办？\n"
        f"        phrasings:\n          - {wording}\n        answer: 退回的钱会回到余额，请核对银行卡后重新提现。\n"
        "      - id: withdrawal.", 1)
    copy.write_text(text, encoding="utf-8")
    import os
    os.utime(copy, ns=(os.stat(copy).st_atime_ns, os.stat(copy).st_mtime_ns + 10**9))
    after = store.get()
    assert after is not before
    assert pick_question(after, "withdrawal", wording)[0].id == "withdrawal.bounced_back"


def test_a_wording_shared_by_two_questions_is_refused(faq, tmp_path):
    import yaml

    raw = yaml.safe_load(FAQ.read_text(encoding="utf-8"))
    first, second = raw["topics"]["withdrawal"]["questions"][:2]
    second["phrasings"].append(first["phrasings"][0])
    with pytest.raises(FaqError, match="is also one of"):
        parse_faq(tmp_path / "faq.yml", raw)


def test_a_messages_vectors_are_the_vectorizers_to_the_bit(faq):
    """The matcher computes a message's TF-IDF itself (no sklearn call per message) and builds
    the question classifiers' input directly: both must be exactly what sklearn produced."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack

    from bot.faq.match import ENCODER_THREADS, index_for
    from bot.sentence_vectors import encode
    from bot.text import normalize_text

    index = index_for(faq)
    texts = [w for t in faq.topics.values() for q in t.questions for w in (q.question, *q.phrasings)][::7]
    texts += ["", "   ", "ABC abc Abc", "！！！", "退款 退款 退款 退款", "今天天气怎么样", "zzzz"]
    for text in texts:
        normal = normalize_text(text)
        expected = index._vectorizer.transform([normal])
        query = index._query(text)
        assert np.array_equal(query.indices, expected.indices) and np.array_equal(query.values, expected.data), text
        assert np.array_equal(query.words_dense, expected.toarray().ravel()), text
        features = hstack([expected, csr_matrix(encode([normal], ENCODER_THREADS)[:1])]).tocsr()
        built = query.features()
        assert built.shape == features.shape, text
        for part in ("indptr", "indices", "data"):
            assert np.array_equal(getattr(built, part), getattr(features, part)), (text, part)
