"""Turn an FAQ topic into the chat messages a user sees (text + quick-reply buttons).

Plain dicts in the shape of Rasa's `utter_message(text=..., buttons=[...])`, so the same
rendering serves actions, tests and (later) the agent console's "what the bot would say".
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Sequence

from bot.faq.model import Faq, Question, Topic
from bot.topics import MENU_TOPICS

Message = Dict[str, Any]


MAX_QUESTION_BUTTONS = 4


def button(title: str, intent: str) -> Dict[str, str]:
    """A quick-reply button whose payload triggers `intent` (Rasa's `/intent` syntax)."""
    return {"title": title, "payload": f"/{intent}"}


def topic_buttons(faq: Faq, names: Sequence[str]) -> List[Dict[str, str]]:
    return [button(faq.topics[n].title, n) for n in names if n in faq.topics]


def question_button(question: Question) -> Dict[str, str]:
    """A button that asks one specific question: its topic's intent with the question's id."""
    entity = json.dumps({"question_id": question.id}, ensure_ascii=False, separators=(",", ":"))
    return {"title": question.question, "payload": f"/{question.topic}{entity}"}


def with_faq_id(message: Message, faq_id: str) -> Message:
    """Every answer says which FAQ entry produced it (topic name or question id): the message
    metadata on the tracker event and in the REST response, for the dashboard and integrators."""
    return {**message, "metadata": {"faq_id": faq_id}}


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
        messages.append(with_faq_id({"text": faq.fill(topic.urgent)}, topic.name))
    answer: Message = {"text": faq.fill(topic.answer_for(entities))}
    related = topic_buttons(faq, topic.related)
    if related:
        answer["buttons"] = related
    messages.append(with_faq_id(answer, topic.name))
    if ask_resolved:
        messages.append(resolved_question(faq, topic.offer_human))
    return messages


def render_question(faq: Faq, topic: Topic, question: Question, entities: List[Mapping[str, Any]],
                    ask_resolved: bool = True, also: Sequence[Question] = ()) -> List[Message]:
    """A specific question's short answer, buttons for the questions it was a close call with
    (`also`, first) and its related questions, then 是/否."""
    messages: List[Message] = []
    if topic.urgent:
        messages.append(with_faq_id({"text": faq.fill(topic.urgent)}, question.id))
    answer: Message = {"text": faq.fill(question.answer_for(entities))}
    others = [*also, *(q for q in (faq.question(i) for i in question.related) if q is not None)]
    others = list({q.id: q for q in others if q.id != question.id}.values())[:MAX_QUESTION_BUTTONS]
    if others:
        answer["buttons"] = [question_button(q) for q in others]
    messages.append(with_faq_id(answer, question.id))
    if ask_resolved:
        messages.append(resolved_question(faq, topic.offer_human))
    return messages


def render_overview(faq: Faq, topic: Topic, entities: List[Mapping[str, Any]],
                    suggestions: Sequence[Question], ask_resolved: bool = True) -> List[Message]:
    """The topic's overview, then "您是不是想问" with the closest specific questions."""
    messages = render_topic(faq, topic, entities, ask_resolved=False)
    if suggestions:
        messages.append(with_faq_id({"text": faq.message("did_you_mean"),
                                     "buttons": [question_button(q) for q in suggestions]}, topic.name))
    if ask_resolved:
        messages.append(resolved_question(faq, topic.offer_human))
    return messages


def render_not_understood(faq: Faq, closest: Sequence[Question], again: bool = False) -> List[Message]:
    """Not understood: say so, offer the closest questions and a person (a second time in a row,
    the person first)."""
    human = button(faq.message("button_human"), "contact_human")
    buttons = [question_button(q) for q in closest]
    buttons = [human] + buttons if again else buttons + [human]
    return [{"text": faq.message("not_understood_again" if again else "not_understood"), "buttons": buttons}]


def render_out_of_scope(faq: Faq) -> List[Message]:
    """Off-topic: what the assistant can help with, a few topics, and a person if wanted."""
    buttons = topic_buttons(faq, MENU_TOPICS) + [button(faq.message("button_human"), "contact_human")]
    return [{"text": faq.message("out_of_scope"), "buttons": buttons}]


def render_clarify(faq: Faq, candidates: Sequence[str]) -> List[Message]:
    """Low confidence between close topics: let the user pick, or ask for a person."""
    buttons = topic_buttons(faq, candidates) + [button(faq.message("button_human"), "contact_human")]
    return [{"text": faq.message("clarify"), "buttons": buttons}]
