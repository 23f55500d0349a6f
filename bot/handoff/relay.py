"""The channel side of a hand-off, shared by every input channel.

While a ticket is active the assistant is paused (Rasa logs the user's messages but answers
nothing): each message is added to the ticket's transcript and acknowledged. "取消转人工"
cancels and resumes the assistant. After an agent closes the ticket the user's 1-5 reply is
stored as the rating. Agent messages waiting in the outbox are delivered with every answer.
"""
from __future__ import annotations

import asyncio
import re
from typing import Any, Dict, List, Optional, Tuple

from bot.faq.model import Faq
from bot.handoff.store import TicketStore
from bot.settings import HandoffSettings
from bot.text import normalize_text

_RATING = re.compile(r"^(?:/rate_)?([1-5一二三四五])\s*(?:分|星)?$")
_CN = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}

Reply = Dict[str, Any]


def parse_rating(text: str) -> Optional[int]:
    match = _RATING.match(normalize_text(text or "").replace(" ", ""))
    if not match:
        return None
    value = match.group(1)
    return _CN.get(value) or int(value)


def is_cancel(text: str, phrases) -> bool:
    normal = normalize_text(text or "").replace(" ", "")
    return any(p in normal for p in phrases)


def rating_buttons() -> List[Dict[str, str]]:
    return [{"title": f"{n} 分", "payload": str(n)} for n in range(1, 6)]


def outbox_reply(message: Dict[str, Any]) -> Reply:
    """An agent or system message as the user sees it, marked as from a person when it is."""
    reply: Reply = {"text": message["text"]}
    if message.get("buttons"):
        reply["buttons"] = message["buttons"]
    if message["role"] == "agent":
        reply["text"] = f"【人工客服 {message['agent']}】{message['text']}"
        reply["metadata"] = {"from": "agent", "agent": message["agent"]}
    else:
        reply["metadata"] = {"from": "system"}
    return reply


class HandoffRelay:
    def __init__(self, store: TicketStore, faq: Faq, settings: HandoffSettings) -> None:
        self.store, self.faq, self.settings = store, faq, settings

    async def _run(self, fn, *args):
        return await asyncio.to_thread(fn, *args)

    async def intercept(self, sender: str, text: str) -> Tuple[Optional[List[Reply]], Optional[Dict[str, Any]]]:
        """(replies, active ticket): replies when the message is handled here (cancel, rating),
        else None; the conversation's active ticket (looked up once per message)."""
        ticket = await self._run(self.store.active_ticket, sender)
        if ticket and is_cancel(text, self.settings.cancel_phrases):
            await self._run(self.store.cancel, sender)
            await self._run(self.store.add_message, ticket["number"], "user", text)
            return [{"text": self.faq.message("handoff_cancelled"), "resume": True}], None
        if ticket:
            return None, ticket
        waiting = await self._run(self.store.ticket_awaiting_rating, sender)
        if waiting:
            score = parse_rating(text)
            if score is not None:
                await self._run(self.store.rate, waiting["number"], score)
                return [{"text": self.faq.message("rating_thanks")}], None
            await self._run(self.store.stop_waiting_for_rating, sender)
        return None, None

    async def record_paused_message(self, ticket: Dict[str, Any], text: str) -> List[Reply]:
        """A message sent while a person handles the case: keep it and acknowledge it."""
        await self._run(self.store.add_message, ticket["number"], "user", text)
        return [{"text": self.faq.message("handoff_ack", ticket=ticket["number"]), "metadata": {"from": "system"}}]

    async def outbox(self, sender: str) -> List[Reply]:
        return [outbox_reply(m) for m in await self._run(self.store.take_outbox, sender)]
