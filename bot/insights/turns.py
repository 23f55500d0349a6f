"""Read conversations from Rasa's tracker store as user turns with what the assistant did.

Both the dashboard numbers (analytics.py) and the FAQ gap list (gaps.py) are built from these
turns, so they always agree. A turn is one user message and the events up to the next one:

- `outcome`: `answered` (an FAQ answer), `handed_off` (a ticket was opened: the assistant
  paused), `out_of_scope` (classified out of scope; these are handed off too), `clarified`
  (asked which topic or to describe the problem), `conversation` (greeting, thanks, 是/否
  replies, offers), `to_agent` (sent while a person handles the case: Rasa only logs it),
  `relay` (answered before Rasa: rating, cancelling the hand-off), `no_reply`;
- `resolved`: for an answered turn, the user's reply to "这个回答解决您的问题了吗？": True (是),
  False (否, or 没用 and the like), None (no reply to it).

Timestamps are Rasa's (Unix seconds, UTC). `text` is as stored (our channels mask at ingress;
Rasa's HTTP API or another tracker store may not): mask it before displaying (gaps.py does).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.dialogue.clarify import best_guess
from bot.dialogue.escalation import UNHELPFUL_WORDS
from bot.insights.sources import EVENTS, EngineOrUrl, tracker_engine
from bot.topics import FALLBACK_INTENT

# What happened before the window still matters (a conversation paused yesterday, an answer
# given just before the window): read this much earlier than the window starts.
LOOKBACK = timedelta(hours=12)
READ_TYPES = ("user", "bot", "action", "pause", "resume", "restart", "session_started")
IGNORED_ACTIONS = ("action_listen", "action_session_start", "action_restart")

NOT_UNDERSTOOD_ACTIONS = frozenset({"action_not_understood", "action_clarify_or_handoff"})
"""The assistant asked back or said it did not understand (the second name: older trackers)."""
OUTCOMES = ("answered", "handed_off", "out_of_scope", "clarified", "conversation", "to_agent", "relay", "no_reply")


@dataclass
class Turn:
    sender_id: str
    timestamp: float
    channel: str
    text: str  # as stored: mask before display
    intent: Optional[str]  # None: the relay answered it, Rasa did not classify it
    confidence: Optional[float]
    guess: Optional[str]  # the topic the classifier leaned to (also below the threshold)
    outcome: str = "no_reply"
    actions: Tuple[str, ...] = ()
    resolved: Optional[bool] = None
    feedback: Optional[str] = None  # "deny" or "unhelpful" when resolved is False
    faq_id: Optional[str] = None  # the FAQ entry that answered (topic or specific question id)

    def as_dict(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken as UTC (as the hand-off tables store them)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def window(since: Optional[datetime] = None, until: Optional[datetime] = None,
           days: int = 7) -> Tuple[datetime, datetime]:
    """(since, until) as aware UTC; default the last `days` days up to now."""
    end = utc(until) if until else datetime.now(timezone.utc)
    start = utc(since) if since else end - timedelta(days=days)
    if start >= end:
        raise ValueError("时间范围无效：开始时间必须早于结束时间")
    return start, end


def _rows(engine: Engine, since: float, until: float) -> Iterator[Tuple[str, str, float, Dict[str, Any]]]:
    query = (sa.select(EVENTS.c.sender_id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
             .where(EVENTS.c.timestamp >= since, EVENTS.c.timestamp < until, EVENTS.c.type_name.in_(READ_TYPES))
             .order_by(EVENTS.c.sender_id, EVENTS.c.id))
    with engine.connect() as conn:
        for sender, type_name, timestamp, data in conn.execute(query):
            try:
                parsed = json.loads(data or "{}")
            except ValueError:
                continue  # a row another tool damaged: skip it, never fail the report
            yield sender, type_name, float(timestamp or 0.0), parsed if isinstance(parsed, dict) else {}


def read_turns(source: EngineOrUrl, since: datetime, until: datetime) -> List[Turn]:
    """The user turns in [since, until), in conversation order (sender, then time)."""
    engine = tracker_engine(source)
    if engine is None:
        return []
    start, end = utc(since).timestamp(), utc(until).timestamp()
    turns: List[Turn] = []
    state = _State()
    for sender, type_name, timestamp, data in _rows(engine, start - LOOKBACK.total_seconds(), end):
        if sender != state.sender:
            turns.extend(t for t in state.finish() if t.timestamp >= start)
            state = _State(sender)
        state.apply(type_name, timestamp, data)
    turns.extend(t for t in state.finish() if t.timestamp >= start)
    return turns


class _State:
    """One conversation being read: paused or not, the turn being filled in."""

    def __init__(self, sender: Optional[str] = None) -> None:
        self.sender = sender
        self.paused = False
        self.turn: Optional[Turn] = None
        self.paused_in_turn = False
        self.turns: List[Turn] = []

    def apply(self, type_name: str, timestamp: float, data: Dict[str, Any]) -> None:
        if type_name == "user":
            self._close()
            self.turn = _user_turn(self.sender or "", timestamp, data, self.paused)
            self.paused_in_turn = False
            self.turns.append(self.turn)
        elif type_name == "pause":
            self.paused, self.paused_in_turn = True, True
        elif type_name in ("resume", "restart", "session_started"):
            self.paused = False
        elif type_name == "bot" and self.turn is not None and not self.turn.faq_id:
            self.turn.faq_id = ((data.get("metadata") or {}).get("faq_id")) or None
        elif type_name == "action" and self.turn is not None:
            name = data.get("name")
            if name and name not in IGNORED_ACTIONS:
                self.turn.actions += (name,)

    def _close(self) -> None:
        if self.turn is not None:
            self.turn.outcome = _outcome(self.turn, self.paused_in_turn)

    def finish(self) -> List[Turn]:
        self._close()
        self.turn = None
        return _feedback(self.turns)


def _feedback(turns: List[Turn]) -> List[Turn]:
    """Each answer's 是/否 (or 没用) from the user's next turn."""
    for answer, reply in zip(turns, turns[1:]):
        if answer.outcome != "answered" or reply.outcome in ("to_agent", "relay"):
            continue
        if any(word in reply.text for word in UNHELPFUL_WORDS):
            answer.resolved, answer.feedback = False, "unhelpful"
        elif reply.intent == "affirm":
            answer.resolved = True
        elif reply.intent == "deny":
            answer.resolved, answer.feedback = False, "deny"
    return turns


def _user_turn(sender: str, timestamp: float, data: Dict[str, Any], paused: bool) -> Turn:
    parse = data.get("parse_data") if isinstance(data.get("parse_data"), dict) else {}
    intent = (parse.get("intent") or {}).get("name") if parse else None
    confidence = (parse.get("intent") or {}).get("confidence") if parse else None
    guess, _ = best_guess(parse) if parse else (None, 0.0)
    turn = Turn(
        sender_id=sender,
        timestamp=timestamp,
        channel=str(data.get("input_channel") or "unknown"),
        text=str(data.get("text") or ""),
        intent=intent,
        confidence=float(confidence) if confidence is not None else None,
        guess=guess if guess != FALLBACK_INTENT else None,
    )
    if paused:
        turn.outcome = "relay" if intent is None else "to_agent"
    elif intent is None:
        turn.outcome = "relay"
    return turn


def _outcome(turn: Turn, paused_in_turn: bool) -> str:
    if turn.outcome in ("to_agent", "relay"):
        return turn.outcome
    if turn.intent == "out_of_scope":
        return "out_of_scope"
    if paused_in_turn:
        return "handed_off"
    if "action_answer_faq" in turn.actions:
        return "answered"
    if NOT_UNDERSTOOD_ACTIONS & set(turn.actions):
        return "clarified"
    return "conversation" if turn.actions else "no_reply"


def by_conversation(turns: Iterable[Turn]) -> Dict[str, List[Turn]]:
    out: Dict[str, List[Turn]] = {}
    for turn in turns:
        out.setdefault(turn.sender_id, []).append(turn)
    return out
