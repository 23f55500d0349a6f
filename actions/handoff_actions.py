"""Hand-off to a person: open a ticket with context, or first ask which topic was meant."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.shared import faq, send
from bot.dialogue.clarify import best_guess, clarify_candidates
from bot.dialogue.history import action_before_latest_user_message, latest_user_text
from bot.faq.render import render_clarify
from bot.handoff.context import recent_user_messages
from bot.handoff.store import HandoffRequest, ticket_store
from bot.settings import handoff_settings
from bot.text import has_words, normalize_text, strip_control

REASON_BY_INTENT = {
    "contact_human": "contact_human",
    "out_of_scope": "out_of_scope",
    "deny": "not_solved",
    "nlu_fallback": "low_confidence",
}


def open_handoff(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> None:
    settings = handoff_settings()
    intent, confidence = best_guess(tracker.latest_message)
    if reason == "not_solved":
        intent, confidence = tracker.get_slot("last_topic") or intent, None
    request = HandoffRequest(
        conversation_id=tracker.sender_id,
        channel=tracker.get_latest_input_channel() or "unknown",
        reason=reason,
        intent=intent,
        confidence=confidence,
        recent_messages=recent_user_messages(tracker.events, settings.recent_messages),
    )
    ticket, created = ticket_store(settings.database_url).open_ticket(request)
    key = "handoff_opened" if created else "handoff_exists"
    dispatcher.utter_message(text=faq().message(key, ticket=ticket["number"]))


class ActionHandoff(Action):
    """contact_human, out_of_scope, and 否 after an answer: open (or reuse) a ticket."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        open_handoff(dispatcher, tracker, REASON_BY_INTENT.get(intent, "contact_human"))
        return []


class ActionClarifyOrHandoff(Action):
    """Low confidence: no words -> ask to describe; two close topics -> ask once; else hand off."""

    def name(self) -> Text:
        return "action_clarify_or_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        current = faq()
        raw = latest_user_text(tracker.events)
        if not has_words(normalize_text(raw)):
            dispatcher.utter_message(text=current.message("emoji_only" if strip_control(raw).strip() else "empty_input"))
            return []
        ranking = tracker.latest_message.get("intent_ranking") or []
        candidates = clarify_candidates(ranking, handoff_settings())
        asked_already = action_before_latest_user_message(tracker.events) == self.name()
        if candidates and not asked_already:
            send(dispatcher, render_clarify(current, candidates))
            return []
        open_handoff(dispatcher, tracker, "low_confidence")
        return []
