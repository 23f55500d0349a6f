"""The channel side of a hand-off, shared by every input channel.

While a ticket is active the assistant is paused (Rasa logs the user's messages but answers
nothing): each message is added to the ticket's transcript and acknowledged. While the ticket
waits and no agent has claimed it, a question the assistant knows is answered all the same
(marked as the assistant's, with the place in the queue; bot/channels/handoff_flow.py asks the
NLU); once an agent claims it, messages go to the agent only. "取消转人工"
cancels and resumes the assistant. After an agent closes the ticket the user's 1-5 reply is
stored as the rating. Agent messages waiting in the outbox are delivered with every answer.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from bot.faq.model import Faq
from bot.handoff.store import TicketStore
from bot.config import HandoffSettings
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


@dataclass
class Turn:
    """What the relay decided before Rasa sees a message."""

    earlier: List[Reply] = field(default_factory=list)  # agent messages waiting: they come first
    handled: Optional[List[Reply]] = None  # answered here (cancel, rating): Rasa only logs it
    ticket: Optional[Dict[str, Any]] = None  # active ticket: Rasa is paused, the ticket gets it


class HandoffRelay:
    """The database side of the hand-off, in two calls per message: `begin` before Rasa,
    `finish` after it.

    On a database server each call is a thread hop, so the event loop serves other users while
    the network answers. On the SQLite file (the embedded default) the usual answer, "nothing
    waiting, no ticket", takes tens of microseconds: a thread hop (and waiting for the GIL
    to come back) cost more than the queries, so those reads run inline there. Anything that
    writes (a message kept on a ticket, the outbox marked delivered, a rating) goes to a thread
    on SQLite too: a write commits with an fsync (the project database keeps SQLite's FULL
    synchronous mode) and may wait for another writer's lock, and on the event loop that wait
    stopped every user's turn; in the 50-user burst (bot/devtools/bench/burst.py) 210 ticket
    commits held the loop 0.39 s of a 5 s run.
    """

    def __init__(self, store: TicketStore, faq: Faq, settings: HandoffSettings) -> None:
        self.store, self.faq, self.settings = store, faq, settings
        self.inline = store.engine.url.get_backend_name() == "sqlite"

    async def begin(self, sender: str, text: str) -> Turn:
        if self.inline:
            outbox, tickets = self.store.anything_for(sender)  # nearly always (False, False)
            if not outbox and not tickets:
                return Turn()
        return await asyncio.to_thread(self._begin, sender, text)

    async def finish(self, sender: str, turn: Turn, text: str, answered: Optional[List[Reply]] = None) -> List[Reply]:
        if self.inline and not self._keeps_message(turn) and not self.store.has_outbox(sender):
            return []  # nothing to write, nothing to deliver
        return await asyncio.to_thread(self._finish, sender, turn, text, answered)

    async def outbox(self, sender: str) -> List[Reply]:
        if self.inline and not self.store.has_outbox(sender):
            return []
        return await asyncio.to_thread(self._outbox, sender)

    def _outbox(self, sender: str) -> List[Reply]:
        return [outbox_reply(m) for m in self.store.take_outbox(sender)]

    def _begin(self, sender: str, text: str) -> Turn:
        outbox, tickets = self.store.anything_for(sender)  # nearly always (False, False)
        turn = Turn(earlier=self._outbox(sender) if outbox else [])
        if not tickets:
            return turn
        ticket, waiting = self.store.conversation_tickets(sender)
        if ticket and is_cancel(text, self.settings.cancel_phrases):
            self.store.cancel(sender)
            self.store.add_message(ticket["number"], "user", text)
            turn.handled = [{"text": self.faq.message("handoff_cancelled"), "resume": True}]
        elif ticket:
            turn.ticket = ticket
        elif waiting:
            score = parse_rating(text)
            if score is not None:
                self.store.rate(waiting["number"], score)
                turn.handled = [{"text": self.faq.message("rating_thanks")}]
            else:
                self.store.stop_waiting_for_rating(sender)
        return turn

    @staticmethod
    def _keeps_message(turn: Turn) -> bool:
        """A person handles the case: the message goes on the ticket."""
        return bool(turn.ticket) and turn.handled is None

    def _finish(self, sender: str, turn: Turn, text: str, answered: Optional[List[Reply]] = None) -> List[Reply]:
        """A message sent while a person handles the case is kept for the agent, and either
        acknowledged or (still in the queue, a question the assistant knows: `answered`)
        followed by the assistant's answer and the place in the queue; then whatever an agent
        sent meanwhile."""
        replies: List[Reply] = []
        if self._keeps_message(turn):
            number = turn.ticket["number"]
            self.store.add_message(number, "user", text)
            if answered:
                self.store.add_messages(number, "bot", [r["text"] for r in answered])
                ahead = max(0, self.store.queue_position(number) - 1)
                replies.append({"text": self.faq.message("queued_answer_note", ahead=ahead, ticket=number),
                                "metadata": {"from": "system"}})
            else:
                replies.append(self._acknowledgement(number))
        return replies + self._outbox(sender)

    async def finish_repeat(self, turn: Turn, text: str) -> List[Reply]:
        """For a message sent again with the same id (its turn is in the tracker): the
        acknowledgement again, and the note on the ticket only if the first copy stopped before
        storing it (the ticket's newest user message is not this one)."""
        if not self._keeps_message(turn):
            return []
        return await asyncio.to_thread(self._finish_repeat, turn, text)

    def _finish_repeat(self, turn: Turn, text: str) -> List[Reply]:
        number = turn.ticket["number"]
        said = [m["text"] for m in self.store.transcript(number) if m["role"] == "user"]
        if not said or said[-1] != text:
            self.store.add_message(number, "user", text)
        return [self._acknowledgement(number)]

    def _acknowledgement(self, number: str) -> Reply:
        """"Your message is on ticket …": what a message kept for the agent is answered with."""
        return {"text": self.faq.message("handoff_ack", ticket=number), "metadata": {"from": "system"}}


def may_answer_while_queued(ticket: Optional[Dict[str, Any]]) -> bool:
    """An active ticket nobody has claimed yet: the assistant may still answer what it knows."""
    return bool(ticket) and ticket.get("status") == "open"
