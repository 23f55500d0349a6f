"""Open and look up hand-off tickets.

One open ticket per conversation: asking twice returns the existing ticket instead of
queueing the user again.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Tuple

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.handoff.models import Base, Ticket

REASONS = ("contact_human", "low_confidence", "out_of_scope", "not_solved")


@dataclass(frozen=True)
class HandoffRequest:
    conversation_id: str
    channel: str
    reason: str
    intent: Optional[str]
    confidence: Optional[float]
    recent_messages: List[str]


class TicketStore:
    def __init__(self, url: str) -> None:
        kwargs = {"future": True, "pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **kwargs)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False, future=True)

    def open_ticket(self, request: HandoffRequest) -> Tuple[dict, bool]:
        """(ticket, created): the conversation's open ticket, or a new one."""
        if request.reason not in REASONS:
            raise ValueError(f"unknown hand-off reason {request.reason!r}")
        with self._session.begin() as session:
            existing = (
                session.query(Ticket)
                .filter_by(conversation_id=request.conversation_id, status="open")
                .order_by(Ticket.id)
                .first()
            )
            if existing is not None:
                return existing.as_dict(), False
            ticket = Ticket(
                conversation_id=request.conversation_id,
                channel=request.channel or "unknown",
                reason=request.reason,
                intent=request.intent,
                confidence=request.confidence,
                recent_messages=list(request.recent_messages),
            )
            session.add(ticket)
            session.flush()
            ticket.number = f"T{ticket.created_at:%y%m%d}{ticket.id:05d}"
            return ticket.as_dict(), True

    def open_tickets(self) -> List[dict]:
        with self._session() as session:
            rows = session.query(Ticket).filter_by(status="open").order_by(Ticket.id).all()
            return [t.as_dict() for t in rows]

    def find(self, number: str) -> Optional[dict]:
        with self._session() as session:
            ticket = session.query(Ticket).filter_by(number=number).first()
            return ticket.as_dict() if ticket else None


@lru_cache(maxsize=4)
def ticket_store(url: str) -> TicketStore:
    """One store (and connection pool) per database URL per process."""
    return TicketStore(url)
