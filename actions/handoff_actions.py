"""Hand-off to a person: open a ticket with context and pause the assistant, or first ask
which topic was meant, or offer a person after an unhelpful answer."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

from actions.shared import faq, send
from bot.dialogue.clarify import best_guess, clarify_candidates, ranked_topics
from bot.dialogue.escalation import count_unhelpful
from bot.dialogue.history import action_before_latest_user_message, latest_user_text
from bot.faq.match import closest_questions
from bot.faq.render import button, render_clarify, render_not_understood, render_out_of_scope
from bot.handoff.admission import admit_new_ticket
from bot.handoff.agents import agent_store
from bot.handoff.context import recent_user_messages, transcript_so_far
from bot.handoff.hours import opening_in_words
from bot.handoff.queue import estimated_wait_seconds, wait_in_words
from bot.handoff.store import HandoffRequest, QueueOutlook, ticket_store
from bot.config import handoff_settings
from bot.handoff.hours import support_hours
from bot.security.rate_limit import RateLimited
from bot.text import has_words, normalize_text, strip_control

REASON_BY_INTENT = {
    "contact_human": "contact_human",
    "deny": "not_solved",
    "nlu_fallback": "low_confidence",
}


async def open_handoff(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> List[Dict[str, Any]]:
    """Open (or reuse) the ticket, tell the user what happens next, pause the assistant; or,
    when too many new tickets were opened (bot/handoff/admission.py), say so calmly.

    The ticket's SQL runs in a worker thread: actions run inside Rasa's event loop
    (bot/serving/inprocess_actions.py), and a database wait there would stall every conversation."""
    settings = handoff_settings()
    current = faq()
    intent, confidence = best_guess(tracker.latest_message)
    if reason == "not_solved":
        intent, confidence = tracker.get_slot("last_topic") or intent, None
    ranking = ranked_topics(tracker.latest_message.get("intent_ranking") or [])
    request = HandoffRequest(
        conversation_id=tracker.sender_id,
        channel=tracker.get_latest_input_channel() or "unknown",
        reason=reason,
        intent=intent,
        confidence=confidence,
        recent_messages=recent_user_messages(tracker.events, settings.recent_messages),
        suggestions=[{"intent": n, "confidence": round(c, 3)} for n, c in ranking[:3]],
        transcript=transcript_so_far(tracker.events),
    )
    store = ticket_store(settings.database_url)
    try:
        _, texts = await asyncio.to_thread(
            store.open_with_reply, request, lambda ticket, created, outlook: _reply(current, ticket, created, outlook),
            lambda: admit_new_ticket(current))
    except RateLimited as busy:  # too many new tickets (this address, or everybody): nothing paused
        dispatcher.utter_message(text=busy.text)
        return []
    for text in texts:
        dispatcher.utter_message(text=text)
    return [ConversationPaused()]


def _reply(current, ticket: Dict[str, Any], created: bool, outlook: QueueOutlook) -> List[str]:
    if not created:
        return [current.message("handoff_exists", ticket=ticket["number"])]
    return [current.message("handoff_opened", ticket=ticket["number"]), _queue_or_hours(current, outlook)]


def _queue_or_hours(current, outlook: QueueOutlook) -> str:
    """Place in the queue and estimated wait, or when people are back outside support hours."""
    now = datetime.now(timezone.utc)
    opening = support_hours().next_opening(now)
    if opening is not None:
        return current.message("handoff_after_hours", opening=opening_in_words(opening, now))
    position = outlook.position()
    wait = estimated_wait_seconds(position, outlook.handling_seconds(),
                                  agent_store(handoff_settings().database_url).active_agents())
    return current.message("handoff_queue", ahead=max(0, position - 1), wait=wait_in_words(wait))


class ActionHandoff(Action):
    """An explicit request for a person: open (or reuse) a ticket."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        return await open_handoff(dispatcher, tracker, REASON_BY_INTENT.get(intent, "contact_human"))


class ActionNotSolved(Action):
    """否 after an answer: offer a person (and a rephrase); the second time, hand off."""

    def name(self) -> Text:
        return "action_not_solved"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if count_unhelpful(tracker.events) >= 2:
            return await open_handoff(dispatcher, tracker, "not_solved")
        current = faq()
        dispatcher.utter_message(text=current.message("not_solved_offer"),
                                 buttons=[button(current.message("button_human"), "contact_human")])
        return []


class ActionNotUnderstood(Action):
    """Low confidence: no words -> ask to describe; two close topics -> ask once; else say so,
    with the closest specific questions and 转人工 (no ticket unless the user asks: the question
    goes to the FAQ gap list). A second failure in a row offers the person more plainly."""

    def name(self) -> Text:
        return "action_not_understood"

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
        send(dispatcher, render_not_understood(current, closest_questions(current, raw), again=asked_already))
        return []


class ActionOutOfScope(Action):
    """Off-topic: what the assistant can help with, a few topic buttons and 转人工; no ticket."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        send(dispatcher, render_out_of_scope(faq()))
        return []
