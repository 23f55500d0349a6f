"""SQLAlchemy tables of the hand-off store (SQLite by default, PostgreSQL by URL)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Column, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import declarative_base

Base = declarative_base()


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Ticket(Base):
    """One request for a human, with what the agent needs to pick it up."""

    __tablename__ = "handoff_tickets"

    id = Column(Integer, primary_key=True, autoincrement=True)
    number = Column(String(32), unique=True, index=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(64), nullable=False, default="unknown")
    status = Column(String(16), nullable=False, default="open", index=True)
    reason = Column(String(32), nullable=False)
    intent = Column(String(64))
    confidence = Column(Float)
    recent_messages = Column(JSON, nullable=False, default=list)
    created_at = Column(DateTime, nullable=False, default=utcnow)

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "conversation_id": self.conversation_id,
            "channel": self.channel,
            "status": self.status,
            "reason": self.reason,
            "intent": self.intent,
            "confidence": self.confidence,
            "recent_messages": list(self.recent_messages or []),
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }
