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
