"""`make eval`'s scoring with the labels of the 23-topic contract: `a|b` (either topic is right)
and `out_of_scope|x` (x, or a hand-off/decline, is right)."""
from __future__ import annotations

from bot.training.metrics import confusion, is_right, labels_of, score
from bot.topics import FAQ_TOPICS


def test_either_listed_topic_is_right():
    assert labels_of("withdrawal|transfer") == ("withdrawal", "transfer")
    assert is_right("withdrawal|transfer", "transfer") and is_right("withdrawal|transfer", "withdrawal")
    assert not is_right("withdrawal|transfer", "refund")


def test_out_of_scope_or_topic_accepts_a_hand_off():
    assert is_right("out_of_scope|limits", "limits")
    assert is_right("out_of_scope|limits", "nlu_fallback") and is_right("out_of_scope|limits", "contact_human")
    assert not is_right("out_of_scope|limits", "refund")


def test_scores_with_multi_labels():
    gold = ["refund", "withdrawal|transfer", "out_of_scope|fees", "out_of_scope", "out_of_scope", "top_up"]
    predicted = ["refund", "transfer", "nlu_fallback", "out_of_scope", "refund", "nlu_fallback"]
    s = score(gold, predicted)
    assert s.in_scope_rows == 4 and s.out_of_scope_rows == 2
    assert s.accuracy == 3 / 4  # refund, transfer, the hand-off of out_of_scope|fees
    assert s.wrong_answer_rate == 0.0  # top_up got a hand-off, not another topic's answer
    assert s.out_of_scope_handed_off == 1 / 2
    assert set(FAQ_TOPICS) <= set(s.per_intent)  # every topic reported, also without rows
    assert s.per_intent["transfer"]["support"] == 1 and s.per_intent["transfer"]["recall"] == 1.0
    assert s.per_intent["withdrawal"]["recall"] == 1.0  # the row was answered right
    assert s.per_intent["top_up"]["recall"] == 0.0 and s.per_intent["limits"]["support"] == 0


def test_confusion_counts_a_right_row_under_the_topic_it_got():
    labels, matrix = confusion(["withdrawal|transfer", "withdrawal|transfer"], ["transfer", "refund"])
    assert matrix[labels.index("transfer")][labels.index("transfer")] == 1
    assert matrix[labels.index("withdrawal")][labels.index("refund")] == 1
