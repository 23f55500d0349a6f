"""The answer to a message classified into an FAQ topic: the specific question it asks (or the
one a "您是不是想问" button picked), else the topic's overview with the closest questions."""
from __future__ import annotations

from typing import Any, List, Mapping

from bot.faq.match import SUGGESTIONS, close_calls, pick_question
from bot.faq.model import Faq, Topic
from bot.faq.render import Message, render_overview, render_question


def picked_question_id(entities: List[Mapping[str, Any]]) -> str:
    return next((str(e.get("value")) for e in entities if e.get("entity") == "question_id"), "")


def answer_messages(faq: Faq, topic: Topic, entities: List[Mapping[str, Any]], text: str,
                    ask_resolved: bool = True) -> List[Message]:
    picked = faq.question(picked_question_id(entities))
    if picked is not None and picked.topic == topic.name:
        return render_question(faq, topic, picked, entities, ask_resolved)
    picked, ranked = pick_question(faq, topic.name, text)
    if picked is not None:
        return render_question(faq, topic, picked, entities, ask_resolved, also=close_calls(ranked))
    return render_overview(faq, topic, entities, [m.question for m in ranked[:SUGGESTIONS]], ask_resolved)
