"""Answer an FAQ topic, and the short conversational replies (texts from the FAQ file)."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.shared import faq, send
from actions.handoff_actions import open_handoff
from bot.dialogue.escalation import escalation_reason
from bot.dialogue.history import latest_user_text
from bot.faq.answer import answer_messages
from bot.faq.render import render_topic
from bot.notices.text import messages_before_answer
from bot.text import MAX_NLU_CHARS
from bot.topics import FAQ_TOPICS

FRAUD_TOPIC = "report_fraud"


class ActionAnswerFaq(Action):
    """The FAQ answer for the detected topic (variant by entity), then 这个回答解决您的问题了吗？"""

    def name(self) -> Text:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        reason = escalation_reason(tracker.events)
        if reason:  # asked for a person twice, or said 没用 twice: no more FAQ answers
            return await open_handoff(dispatcher, tracker, reason)
        current = faq()
        topic = (tracker.latest_message.get("intent") or {}).get("name")
        if topic not in FAQ_TOPICS:
            topic = tracker.get_slot("last_topic")
        if topic not in current.topics:
            dispatcher.utter_message(text=current.message("clarify"))
            return []
        if len(latest_user_text(tracker.events)) > MAX_NLU_CHARS:
            dispatcher.utter_message(text=current.message("too_long"))
        entities = tracker.latest_message.get("entities") or []
        if topic == FRAUD_TOPIC:  # money at risk: safety steps, then a person at once (first in queue)
            send(dispatcher, render_topic(current, current.topics[topic], entities, ask_resolved=False))
            send(dispatcher, messages_before_answer(current, topic))  # after the safety steps, not before
            return [SlotSet("last_topic", topic)] + await open_handoff(dispatcher, tracker, "scam_signal")
        send(dispatcher, messages_before_answer(current, topic))  # active service notices first
        send(dispatcher, answer_messages(current, current.topics[topic], entities, latest_user_text(tracker.events)))
        return [SlotSet("last_topic", topic)]


class FaqMessageAction(Action):
    """Utter one message of the FAQ file's `messages:` section."""

    action_name = ""
    message_key = ""

    def name(self) -> Text:
        return self.action_name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=faq().message(self.message_key))
        return []


class ActionGreet(FaqMessageAction):
    action_name, message_key = "action_greet", "greet"


class ActionGoodbye(FaqMessageAction):
    action_name, message_key = "action_goodbye", "goodbye"


class ActionThank(FaqMessageAction):
    action_name, message_key = "action_thank", "thank"


class ActionBotChallenge(FaqMessageAction):
    action_name, message_key = "action_bot_challenge", "bot_challenge"


class ActionResolved(FaqMessageAction):
    action_name, message_key = "action_resolved", "resolved"


class ActionAffirmOther(FaqMessageAction):
    action_name, message_key = "action_affirm_other", "affirm_other"


class ActionDenyOther(FaqMessageAction):
    action_name, message_key = "action_deny_other", "deny_other"
