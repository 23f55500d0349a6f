"""Dialogue states computed once per event (bot/serving/rule_states.py) equal Rasa's own,
turn after turn, with every argument combination RulePolicy uses, and after a rewind."""
from __future__ import annotations

import copy

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet,
                                     UserUttered, UserUtteranceReverted)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.config import reload_settings
from bot.serving import rule_states
from tests.conftest import ROOT, load_agent

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
ARGS = [(False, False, None), (True, False, None), (False, True, {"slots": ["last_topic"], "active_loops": []})]


def user(text, intent, entities=()):
    return UserUttered(text, {"name": intent, "confidence": 0.9}, list(entities))


TURNS = [
    [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")],
    [user("你好", "greet"), ActionExecuted("action_greet"), BotUttered("您好"), ActionExecuted("action_listen")],
    [user("退款没到", "refund", [{"entity": "payment_channel", "value": "银行卡"}]),
     ActionExecuted("action_answer_faq"), BotUttered("退款…"), SlotSet("last_topic", "refund"),
     ActionExecuted("action_listen")],
    [user("是", "affirm"), ActionExecuted("utter_glad", hide_rule_turn=True), ActionExecuted("action_listen")],
    [user("还是不行", "deny"), UserUtteranceReverted()],  # a rewind drops the turn again
    [user("转人工", "contact_human"), ActiveLoop("handoff_form"), ActionExecuted("action_handoff"),
     ActiveLoop(None), ActionExecuted("action_listen")],
    [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
     user("在吗", "greet")],
]


def stock_states(tracker, args):
    rule_states.uninstall()
    try:
        return DOMAIN.states_for_tracker_history(tracker, *args)
    finally:
        rule_states.install()


@pytest.fixture(autouse=True)
def installed(monkeypatch):
    monkeypatch.setenv("WALLET_INCREMENTAL_STATES", "1")
    reload_settings()
    rule_states.install()
    yield
    rule_states.uninstall()


@pytest.mark.parametrize("args", ARGS)
def test_states_equal_rasa_after_every_event(args):
    tracker = DialogueStateTracker("s", DOMAIN.slots)
    for events in TURNS:
        for event in events:
            tracker.update(event)
            assert DOMAIN.states_for_tracker_history(tracker, *args) == stock_states(tracker, args)


def test_callers_get_copies_they_may_edit():
    tracker = DialogueStateTracker("s", DOMAIN.slots)
    for event in TURNS[0] + TURNS[1] + TURNS[2]:
        tracker.update(event)
    first = DOMAIN.states_for_tracker_history(tracker)
    for state in first:  # what Rasa's featurizers do to the states they get
        state.get("user", {}).pop("intent", None)
        state.pop("prev_action", None)
    assert DOMAIN.states_for_tracker_history(tracker) == stock_states(tracker, ARGS[0])


def test_a_copied_tracker_is_computed_on_its_own():
    tracker = DialogueStateTracker("s", DOMAIN.slots)
    for event in TURNS[0] + TURNS[1]:
        tracker.update(event)
    DOMAIN.states_for_tracker_history(tracker)
    twin = copy.deepcopy(tracker)
    for event in TURNS[2]:
        twin.update(event)
    assert DOMAIN.states_for_tracker_history(twin) == stock_states(twin, ARGS[0])
    assert DOMAIN.states_for_tracker_history(tracker) == stock_states(tracker, ARGS[0])


def test_switched_off_by_environment(monkeypatch):
    rule_states.uninstall()
    monkeypatch.setenv("WALLET_INCREMENTAL_STATES", "0")
    reload_settings()
    rule_states.install()
    assert Domain.states_for_tracker_history is rule_states._stock


@pytest.fixture(scope="module")
def rule_policy():
    runner = load_agent().processor.graph_runner
    policies = [node._component for node in runner._instantiated_nodes.values()
                if type(getattr(node, "_component", None)).__name__ == "RulePolicy"]
    assert len(policies) == 1
    return policies[0]


@pytest.mark.model
def test_rule_matching_equals_rasa_on_the_trained_rules(rule_policy):
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH

    tracker = DialogueStateTracker("s", DOMAIN.slots)
    checked = 0
    for events in TURNS:
        for event in events:
            tracker.update(event)
            states = stock_states(tracker, ARGS[0])
            for table in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH):
                lookup = rule_policy.lookup.get(table, {})
                keys = rule_states.get_possible_keys(rule_policy, lookup, states)
                assert keys == rule_states._stock_possible_keys(rule_policy, lookup, states)
                checked += bool(keys)
    assert checked > 3  # some rules did match along the way


@pytest.mark.model
def test_remembered_rule_matches_are_the_same_and_bounded(rule_policy, monkeypatch):
    from rasa.core.policies.rule_policy import RULES

    monkeypatch.setattr(rule_states, "MATCH_MEMO_SIZE", 3)
    lookup = rule_policy.lookup[RULES]
    tracker = DialogueStateTracker("s", DOMAIN.slots)
    for events in TURNS * 2:  # the second pass answers from memory where it can
        for event in events:
            tracker.update(event)
            states = stock_states(tracker, ARGS[0])
            assert rule_states.get_possible_keys(rule_policy, lookup, states) == \
                rule_states._stock_possible_keys(rule_policy, lookup, states)
    assert len(rule_policy._wallet_rule_matches) <= 3
