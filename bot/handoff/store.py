"""Hand-off tickets: open, queue, claim, reply, transfer, close, cancel, rate.

One active ticket per conversation. Every state change is a single conditional UPDATE, so
two agents claiming at the same moment cannot both win, in SQLite or PostgreSQL.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional, Tuple

from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import StaffError
from bot.db.engine import engine_for
from bot.db.fast_reads import first_row_reader
from bot.db.models import AuditEntry, Ticket, TicketMessage, iso, utcnow
from bot.handoff.queue import priority_for

REASONS = ("contact_human", "low_confidence", "out_of_scope", "not_solved", "scam_signal")
ACTIVE = ("open", "claimed")

# The relay asks these two questions on every user message, and the answer is nearly always
# "nothing": plain SQL built once, because composing ORM statements (and their cache keys) each
# time was a third of the server's per-message CPU (py-spy --gil, 50 users).
_HAS_OUTBOX = text("SELECT 1 FROM ticket_messages WHERE conversation_id = :c AND delivered = :no LIMIT 1")
_HAS_TICKET = text("SELECT 1 FROM handoff_tickets WHERE conversation_id = :c"
                   " AND (status IN ('" + "', '".join(ACTIVE) + "') OR awaiting_rating = :yes) LIMIT 1")
# Both at once, for the start of a turn: one round trip instead of two.
_ANYTHING = text("SELECT EXISTS (" + _HAS_OUTBOX.text + "), EXISTS (" + _HAS_TICKET.text + ")")


@dataclass(frozen=True)
class HandoffRequest:
    conversation_id: str
    channel: str
    reason: str
    intent: Optional[str]
    confidence: Optional[float]
    recent_messages: List[str]
    suggestions: List[Dict[str, Any]] = field(default_factory=list)
    transcript: List[Tuple[str, str]] = field(default_factory=list)  # (role, text) so far


class TicketError(StaffError):
    """A console action on a ticket that cannot be done (message, HTTP status: as StaffError)."""


def ticket_dict(t: Ticket, agent_name: Optional[str] = None) -> Dict[str, Any]:
    return {
        "number": t.number,
        "conversation_id": t.conversation_id,
        "channel": t.channel,
        "status": t.status,
        "priority": t.priority,
        "reason": t.reason,
        "intent": t.intent,
        "confidence": t.confidence,
        "suggestions": list(t.suggestions or []),
        "recent_messages": list(t.recent_messages or []),
        "agent_id": t.agent_id,
        "agent": agent_name,
        "created_at": iso(t.created_at),
        "claimed_at": iso(t.claimed_at),
        "closed_at": iso(t.closed_at),
        "resolution_note": t.resolution_note,
        "awaiting_rating": t.awaiting_rating,
        "rating": t.rating,
    }


def message_dict(m: TicketMessage) -> Dict[str, Any]:
    return {"id": m.id, "role": m.role, "text": m.text, "buttons": m.buttons or [],
            "agent": m.agent_name, "created_at": iso(m.created_at)}


@dataclass
class QueueOutlook:
    """What a new ticket's answer may need, read only when asked (outside support hours it is not)."""

    position: Callable[[], int]  # 1 = next to be claimed
    handling_seconds: Callable[[], List[float]]  # of the last closed tickets


class TicketStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self._session = sessionmaker(self.engine, expire_on_commit=False, future=True)
        self._read = first_row_reader(self.engine)  # SQLite file: the per-message reads skip SQLAlchemy

    def _first(self, statement, params: Dict[str, Any]):
        if self._read is not None:
            return self._read(statement.text, params)
        with self.engine.connect() as connection:
            return connection.execute(statement, params).first()

    def _exists(self, statement, **params: Any) -> bool:
        return self._first(statement, params) is not None

    # -- user side -------------------------------------------------------------------------
    def open_ticket(self, request: HandoffRequest) -> Tuple[Dict[str, Any], bool]:
        """(ticket, created): the conversation's active ticket, or a new one."""
        with self._session.begin() as s:
            ticket, created = self._open(s, request)
            return ticket_dict(ticket), created

    def open_with_reply(self, request: HandoffRequest,
                        reply: Callable[[Dict[str, Any], bool, "QueueOutlook"], List[str]],
                        admit: Optional[Callable[[], None]] = None) -> Tuple[Dict[str, Any], List[str]]:
        """Open (or find) the ticket, work out its place in the queue and keep the assistant's
        reply to the user (`reply(ticket, created, outlook)`) in the transcript, in one
        transaction: a hand-off turn was the slowest turn, five database sessions long.

        `admit()` is called only when a new ticket would be created; whatever it raises (the
        ticket limits: bot/handoff/admission.py) leaves the database untouched."""
        with self._session.begin() as s:
            ticket, created = self._open(s, request, admit)
            outlook = QueueOutlook(lambda: self._position(s, ticket.number), lambda: self._handling_seconds(s, 20))
            texts = reply(ticket_dict(ticket), created, outlook)
            if texts:
                s.execute(insert(TicketMessage.__table__), [
                    {"ticket_id": ticket.id, "conversation_id": ticket.conversation_id, "role": "bot", "text": text,
                     "created_at": utcnow(), "delivered": True} for text in texts])
            return ticket_dict(ticket), texts

    def _open(self, s: Session, request: HandoffRequest,
              admit: Optional[Callable[[], None]] = None) -> Tuple[Ticket, bool]:
        if request.reason not in REASONS:
            raise ValueError(f"unknown hand-off reason {request.reason!r}")
        existing = self._active(s, request.conversation_id)
        if existing is not None:
            return existing, False
        if admit is not None:
            admit()
        ticket = Ticket(
            conversation_id=request.conversation_id,
            channel=request.channel or "unknown",
            status="open",
            priority=priority_for(request.intent),
            reason=request.reason,
            intent=request.intent,
            confidence=request.confidence,
            suggestions=list(request.suggestions),
            recent_messages=list(request.recent_messages),
        )
        s.add(ticket)
        s.flush()
        ticket.number = f"T{ticket.created_at:%y%m%d}{ticket.id:05d}"
        if request.transcript:  # one multi-row insert: ORM objects cost more than the rest of the turn
            s.execute(insert(TicketMessage.__table__), [
                {"ticket_id": ticket.id, "conversation_id": ticket.conversation_id, "role": role, "text": text,
                 "created_at": ticket.created_at, "delivered": True} for role, text in request.transcript])
        return ticket, True

    @staticmethod
    def _active(s: Session, conversation_id: str) -> Optional[Ticket]:
        return s.execute(
            select(Ticket).where(Ticket.conversation_id == conversation_id, Ticket.status.in_(ACTIVE))
            .order_by(Ticket.id).limit(1)
        ).scalar_one_or_none()

    def conversation_tickets(self, conversation_id: str) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
        """(active ticket, ticket awaiting a rating) in one query: the relay asks on every message."""
        if not self._exists(_HAS_TICKET, c=conversation_id, yes=True):
            return None, None
        with self._session() as s:
            rows = s.execute(
                select(Ticket).where(Ticket.conversation_id == conversation_id,
                                     Ticket.status.in_(ACTIVE) | Ticket.awaiting_rating.is_(True))
                .order_by(Ticket.id)
            ).scalars().all()
            active = next((t for t in rows if t.status in ACTIVE), None)
            waiting = next((t for t in reversed(rows) if t.awaiting_rating), None)
            return (ticket_dict(active) if active else None), (ticket_dict(waiting) if waiting else None)

    def active_ticket(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        return self.conversation_tickets(conversation_id)[0]

    def queue_position(self, number: str) -> int:
        """1 for the next ticket to be claimed; 0 when already claimed or closed."""
        with self._session() as s:
            return self._position(s, number)

    def recent_handling_seconds(self, last: int = 20) -> List[float]:
        with self._session() as s:
            return self._handling_seconds(s, last)

    @staticmethod
    def _position(s: Session, number: str) -> int:
        t = s.execute(select(Ticket.id, Ticket.status, Ticket.priority).where(Ticket.number == number)).one()
        if t.status != "open":
            return 0
        ahead = s.execute(
            select(func.count()).select_from(Ticket).where(
                Ticket.status == "open",
                (Ticket.priority < t.priority)
                | and_(Ticket.priority == t.priority, Ticket.id < t.id),
            )
        ).scalar_one()
        return ahead + 1

    @staticmethod
    def _handling_seconds(s: Session, last: int) -> List[float]:
        rows = s.execute(
            select(Ticket.claimed_at, Ticket.closed_at)
            .where(Ticket.status == "closed", Ticket.claimed_at.isnot(None), Ticket.closed_at.isnot(None))
            .order_by(Ticket.closed_at.desc()).limit(last)
        ).all()
        return [(closed - claimed).total_seconds() for claimed, closed in rows]

    def add_message(self, number: str, role: str, text: str, agent_name: Optional[str] = None,
                    to_deliver: bool = False, buttons: Optional[list] = None) -> Dict[str, Any]:
        return self.add_messages(number, role, [text], agent_name, to_deliver, buttons)[0]

    def add_messages(self, number: str, role: str, texts: List[str], agent_name: Optional[str] = None,
                     to_deliver: bool = False, buttons: Optional[list] = None) -> List[Dict[str, Any]]:
        """Several messages of one sender to a ticket's transcript, in one transaction."""
        with self._session.begin() as s:
            t = s.execute(select(Ticket).where(Ticket.number == number)).scalar_one()
            added = [TicketMessage(ticket_id=t.id, conversation_id=t.conversation_id, role=role, text=text,
                                   agent_name=agent_name, delivered=not to_deliver, buttons=buttons)
                     for text in texts]
            s.add_all(added)
            s.flush()
            return [message_dict(m) for m in added]

    def anything_for(self, conversation_id: str) -> Tuple[bool, bool]:
        """(undelivered agent/system messages?, active ticket or one awaiting a rating?)"""
        outbox, ticket = self._first(_ANYTHING, {"c": conversation_id, "no": False, "yes": True})
        return bool(outbox), bool(ticket)

    def has_outbox(self, conversation_id: str) -> bool:
        """Undelivered agent/system messages for this conversation? (a read)"""
        return self._exists(_HAS_OUTBOX, c=conversation_id, no=False)

    def take_outbox(self, conversation_id: str) -> List[Dict[str, Any]]:
        """Agent/system messages not yet delivered to the user; marks them delivered."""
        if not self._exists(_HAS_OUTBOX, c=conversation_id, no=False):
            return []  # nearly always: answered without a write transaction
        with self._session.begin() as s:
            rows = s.execute(
                select(TicketMessage).where(TicketMessage.conversation_id == conversation_id,
                                            TicketMessage.delivered.is_(False))
                .order_by(TicketMessage.id).with_for_update()
            ).scalars().all()
            taken = []
            for m in rows:
                done = s.execute(update(TicketMessage).where(TicketMessage.id == m.id, TicketMessage.delivered.is_(False))
                                 .values(delivered=True)).rowcount
                if done:
                    taken.append(message_dict(m))
            return taken

    def cancel(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        """The user cancels the hand-off: the active ticket is closed as cancelled."""
        with self._session.begin() as s:
            t = self._active(s, conversation_id)
            if t is None:
                return None
            s.execute(update(Ticket).where(Ticket.id == t.id, Ticket.status.in_(ACTIVE))
                      .values(status="cancelled", closed_at=utcnow()))
            s.refresh(t)
            return ticket_dict(t)

    def ticket_awaiting_rating(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        return self.conversation_tickets(conversation_id)[1]

    def rate(self, number: str, score: int) -> bool:
        if not 1 <= int(score) <= 5:
            raise ValueError("rating must be 1-5")
        with self._session.begin() as s:
            return bool(s.execute(update(Ticket).where(Ticket.number == number, Ticket.awaiting_rating.is_(True))
                                  .values(rating=int(score), awaiting_rating=False)).rowcount)

    def stop_waiting_for_rating(self, conversation_id: str) -> None:
        with self._session.begin() as s:
            s.execute(update(Ticket).where(Ticket.conversation_id == conversation_id,
                                           Ticket.awaiting_rating.is_(True)).values(awaiting_rating=False))

    # -- agent side ------------------------------------------------------------------------
    def queue(self) -> List[Dict[str, Any]]:
        """Active tickets: unclaimed first by priority then age, then the claimed ones."""
        from bot.db.models import Agent

        last_message = (
            select(TicketMessage.ticket_id, func.max(TicketMessage.id).label("last_id"))
            .group_by(TicketMessage.ticket_id).subquery()
        )
        with self._session() as s:
            rows = s.execute(
                select(Ticket, Agent.name, last_message.c.last_id)
                .outerjoin(Agent, Agent.id == Ticket.agent_id)
                .outerjoin(last_message, last_message.c.ticket_id == Ticket.id)
                .where(Ticket.status.in_(ACTIVE))
                .order_by((Ticket.status != "open"), Ticket.priority, Ticket.id)
            ).all()
            return [{**ticket_dict(t, name), "last_message_id": last_id or 0} for t, name, last_id in rows]

    def get(self, number: str) -> Optional[Dict[str, Any]]:
        from bot.db.models import Agent

        with self._session() as s:
            row = s.execute(select(Ticket, Agent.name).outerjoin(Agent, Agent.id == Ticket.agent_id)
                            .where(Ticket.number == number)).first()
            return ticket_dict(*row) if row else None

    def transcript(self, number: str) -> List[Dict[str, Any]]:
        with self._session() as s:
            t = s.execute(select(Ticket).where(Ticket.number == number)).scalar_one_or_none()
            if t is None:
                return []
            rows = s.execute(select(TicketMessage).where(TicketMessage.conversation_id == t.conversation_id,
                                                         TicketMessage.ticket_id <= t.id)
                             .order_by(TicketMessage.id)).scalars().all()
            return [message_dict(m) for m in rows]

    def claim(self, number: str, agent_id: int) -> Dict[str, Any]:
        with self._session.begin() as s:
            won = s.execute(update(Ticket).where(Ticket.number == number, Ticket.status == "open")
                            .values(status="claimed", agent_id=agent_id, claimed_at=utcnow())).rowcount
        ticket = self.get(number)
        if ticket is None:
            raise TicketError("工单不存在", 404)
        if not won:
            raise TicketError(f"工单已被{ticket['agent'] or '其他坐席'}接手" if ticket["status"] == "claimed"
                              else f"工单状态为 {ticket['status']}，无法接手", 409)
        return ticket

    def _require_owner(self, number: str, agent_id: int) -> Dict[str, Any]:
        ticket = self.get(number)
        if ticket is None:
            raise TicketError("工单不存在", 404)
        if ticket["status"] != "claimed":
            raise TicketError("请先接手该工单" if ticket["status"] == "open" else "工单已结束", 409)
        if ticket["agent_id"] != agent_id:
            raise TicketError(f"该工单由{ticket['agent']}处理", 403)
        return ticket

    def transfer(self, number: str, agent_id: int, to_agent_id: int) -> Dict[str, Any]:
        self._require_owner(number, agent_id)
        with self._session.begin() as s:
            s.execute(update(Ticket).where(Ticket.number == number, Ticket.agent_id == agent_id,
                                           Ticket.status == "claimed").values(agent_id=to_agent_id))
        return self.get(number)

    def close(self, number: str, agent_id: int, note: str) -> Dict[str, Any]:
        self._require_owner(number, agent_id)
        with self._session.begin() as s:
            done = s.execute(update(Ticket).where(Ticket.number == number, Ticket.agent_id == agent_id,
                                                  Ticket.status == "claimed")
                             .values(status="closed", closed_at=utcnow(), resolution_note=note,
                                     awaiting_rating=True)).rowcount
        if not done:
            raise TicketError("工单已结束", 409)
        return self.get(number)

    def reply_allowed(self, number: str, agent_id: int) -> Dict[str, Any]:
        return self._require_owner(number, agent_id)

    def audit(self, agent_name: Optional[str], action: str, number: Optional[str] = None,
              detail: Optional[str] = None) -> None:
        with self._session.begin() as s:
            s.add(AuditEntry(agent_name=agent_name, action=action, ticket_number=number, detail=detail))

    def audit_log(self, limit: int = 100) -> List[Dict[str, Any]]:
        with self._session() as s:
            rows = s.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).scalars().all()
            return [{"agent": a.agent_name, "action": a.action, "ticket": a.ticket_number,
                     "detail": a.detail, "at": iso(a.created_at)} for a in rows]


@lru_cache(maxsize=4)
def ticket_store(url: str) -> TicketStore:
    """One store (and connection pool) per database URL per process."""
    return TicketStore(url)
