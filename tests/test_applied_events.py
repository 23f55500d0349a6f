"""The incremental `applied_events` (bot/serving/applied_events.py) gives exactly Rasa's result
(the same event objects, in order) after every event, over random sessions with restarts,
session starts, rewinds, active loops and their actions."""
from __future__ import annotations

import random

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, ActionReverted, ActiveLoop, BotUttered, Restarted,
                                     SessionStarted, SlotSet, UserUttered, UserUtteranceReverted)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.serving import applied_events as fast

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, ask]
slots:
  topic: {type: any, mappings: [{type: custom}]}
actions: [action_answer_faq, loop_form]
forms: {}
""")


def _event(rng: random.Random):
    kind = rng.choices(["user", "action", "bot", "slot", "loop_action", "loop", "loop_end", "rewind_user",
                        "rewind_action", "restart", "session"],
                       weights=[20, 25, 15, 5, 4, 2, 2, 2, 2, 1, 1])[0]
    return {
        "user": lambda: UserUttered("hi", {"name": rng.choice(["greet", "ask"]), "confidence": 1.0}),
        "action": lambda: ActionExecuted(rng.choice(["action_listen", "action_answer_faq", "utter_x"])),
        "bot": lambda: BotUttered("hello"),
        "slot": lambda: SlotSet("topic", rng.choice(["a", "b"])),
        "loop_action": lambda: ActionExecuted("loop_form"),
        "loop": lambda: ActiveLoop("loop_form"),
        "loop_end": lambda: ActiveLoop(None),
        "rewind_user": UserUtteranceReverted,
        "rewind_action": ActionReverted,
        "restart": Restarted,
        "session": SessionStarted,
    }[kind]()


@pytest.mark.parametrize("seed", range(40))
def test_the_same_applied_events_as_rasa_after_every_event(seed):
    rng = random.Random(seed)
    tracker = DialogueStateTracker("u", DOMAIN.slots)
    for _ in range(rng.randint(5, 120)):
        for _ in range(rng.randint(1, 4)):  # one or several events between two questions
            tracker.update(_event(rng), DOMAIN)
        ours, stock = fast.applied_events(tracker), fast._stock(tracker)
        assert len(ours) == len(stock) and all(a is b for a, b in zip(ours, stock))
        ours.append("changed by a caller")  # a caller's change never reaches the memo
        assert fast.applied_events(tracker) == stock


def test_a_tracker_whose_events_were_replaced_is_recomputed():
    tracker = DialogueStateTracker("u", DOMAIN.slots)
    for event in (ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"}), BotUttered("x")):
        tracker.update(event)
    assert len(fast.applied_events(tracker)) == 3
    tracker.events.clear()
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(BotUttered("y"))
    assert fast.applied_events(tracker) == fast._stock(tracker)
