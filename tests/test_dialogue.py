from bot.dialogue.clarify import best_guess, clarify_candidates, ranked_topics
from bot.dialogue.history import action_before_latest_user_message
from bot.config import HandoffSettings

SETTINGS = HandoffSettings()


def _ranking(*pairs):
    return [{"name": "nlu_fallback", "confidence": 0.55}] + [{"name": n, "confidence": c} for n, c in pairs]


def test_close_topics_are_offered():
    assert clarify_candidates(_ranking(("refund", 0.4), ("payment_failure", 0.35)), SETTINGS) == [
        "refund",
        "payment_failure",
    ]


def test_far_apart_or_weak_or_non_topic_means_no_clarification():
    assert clarify_candidates(_ranking(("refund", 0.5), ("payment_failure", 0.1)), SETTINGS) is None
    assert clarify_candidates(_ranking(("refund", 0.2), ("payment_failure", 0.05)), SETTINGS) is None
    assert clarify_candidates(_ranking(("out_of_scope", 0.4), ("refund", 0.35)), SETTINGS) is None
    off = HandoffSettings(clarify_enabled=False)
    assert clarify_candidates(_ranking(("refund", 0.4), ("payment_failure", 0.35)), off) is None


def test_best_guess_skips_fallback():
    assert ranked_topics(_ranking(("refund", 0.2), ("login_failure", 0.3)))[0] == ("login_failure", 0.3)
    assert best_guess({"intent_ranking": _ranking(("refund", 0.4))}) == ("refund", 0.4)
    assert best_guess({"intent": {"name": "greet", "confidence": 0.9}}) == ("greet", 0.9)


def test_action_before_latest_user_message():
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "a"},
        {"event": "action", "name": "action_clarify_or_handoff"},
        {"event": "bot", "text": "您是想问…"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "b"},
    ]
    assert action_before_latest_user_message(events) == "action_clarify_or_handoff"
    assert action_before_latest_user_message(events[:2]) is None


def test_latest_user_text_is_the_raw_text():
    from bot.dialogue.history import latest_user_text

    events = [{"event": "user", "text": "😀"}, {"event": "bot", "text": "x"}]
    assert latest_user_text(events) == "😀"
    assert latest_user_text([]) == ""


def test_escalation_counts_start_afresh_after_a_handoff():
    from bot.dialogue.escalation import count_human_requests, escalation_reason

    asked = {"event": "user", "text": "转人工", "parse_data": {"intent": {"name": "contact_human"}}}
    assert escalation_reason([asked, asked]) == "contact_human"
    assert count_human_requests([asked, {"event": "pause"}, {"event": "resume"}, asked]) == 1
    assert escalation_reason([asked, {"event": "action", "name": "action_handoff"}, asked]) is None
