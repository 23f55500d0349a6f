"""Turn an FAQ topic into the chat messages a user sees (text + quick-reply buttons).

Plain dicts in the shape of Rasa's `utter_message(text=..., buttons=[...])`, so the same
rendering serves actions, tests and (later) the agent console's "what the bot would say".
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from bot.faq.model import Faq, Topic

Message = Dict[str, Any]


def button(title: str, intent: str) -> Dict[str, str]:
    """A quick-reply button whose payload triggers `intent` (Rasa's `/intent` syntax)."""
    return {"title": title, "payload": f"/{intent}"}


def topic_buttons(faq: Faq, names: Sequence[str]) -> List[Dict[str, str]]:
    return [button(faq.topics[n].title, n) for n in names if n in faq.topics]


def resolved_question(faq: Faq, offer_human: bool) -> Message:
    buttons = [button(faq.message("button_yes"), "affirm"), button(faq.message("button_no"), "deny")]
    if offer_human:
        buttons.append(button(faq.message("button_human"), "contact_human"))
    return {"text": faq.message("ask_resolved"), "buttons": buttons}


def render_topic(faq: Faq, topic: Topic, entities: List[Mapping[str, Any]],
                 ask_resolved: bool = True) -> List[Message]:
    """Urgent safety steps (if any), the answer with related-topic buttons, then 是/否."""
    messages: List[Message] = []
    if topic.urgent:
        messages.append({"text": faq.fill(topic.urgent)})
    answer: Message = {"text": faq.fill(topic.answer_for(entities))}
    related = topic_buttons(faq, topic.related)
    if related:
        answer["buttons"] = related
    messages.append(answer)
    if ask_resolved:
        messages.append(resolved_question(faq, topic.offer_human))
    return messages


def render_clarify(faq: Faq, candidates: Sequence[str]) -> List[Message]:
    """Low confidence between close topics: let the user pick, or ask for a person."""
    buttons = topic_buttons(faq, candidates) + [button(faq.message("button_human"), "contact_human")]
    return [{"text": faq.message("clarify"), "buttons": buttons}]
