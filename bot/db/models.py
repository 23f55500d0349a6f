"""The SQLAlchemy tables of all our own data: tickets, agents, console sessions, the audit log,
service notices and FAQ changes (SQLite by default, PostgreSQL by URL).

The schema is created and upgraded by Alembic (`bot/db/migrations`), never by
`create_all`, so a deployed database can be moved forward safely.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, String, Text,
)
from sqlalchemy.orm import declarative_base

Base = declarative_base()


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(value):
    return value.isoformat() + "Z" if value else None


class Agent(Base):
    """A human support agent who signs in to the console."""

    __tablename__ = "agents"

    id = Column(Integer, primary_key=True, autoincrement=True)
    name = Column(String(64), unique=True, nullable=False)
    password_hash = Column(String(128), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class AgentSession(Base):
    """A signed-in console session; only the token's hash is stored."""

    __tablename__ = "agent_sessions"

    id = Column(Integer, primary_key=True, autoincrement=True)
    token_hash = Column(String(64), unique=True, nullable=False, index=True)
    agent_id = Column(Integer, ForeignKey("agents.id"), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)


class Ticket(Base):
    """One request for a human, with what the agent needs to pick it up."""

    __tablename__ = "handoff_tickets"
    __table_args__ = (Index("ix_handoff_tickets_queue", "status", "priority", "id"),)  # migration 0002

    id = Column(Integer, primary_key=True, autoincrement=True)
    number = Column(String(32), unique=True, index=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(64), nullable=False, default="unknown")
    status = Column(String(16), nullable=False, default="open", index=True)
    priority = Column(Integer, nullable=False, default=3)
    reason = Column(String(32), nullable=False)
    intent = Column(String(64))
    confidence = Column(Float)
    suggestions = Column(JSON, nullable=False, default=list)
    recent_messages = Column(JSON, nullable=False, default=list)
    agent_id = Column(Integer, ForeignKey("agents.id"))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    claimed_at = Column(DateTime)
    closed_at = Column(DateTime)
    resolution_note = Column(Text)
    awaiting_rating = Column(Boolean, nullable=False, default=False)
    rating = Column(Integer)


class TicketMessage(Base):
    """The transcript: user, bot, agent and system turns of a ticket's conversation.

    Messages to the user (agent and system turns) wait here until delivered: the REST channel
    returns them on the user's next poll, push channels send them at once.
    """

    __tablename__ = "ticket_messages"

    id = Column(Integer, primary_key=True, autoincrement=True)
    ticket_id = Column(Integer, ForeignKey("handoff_tickets.id"), nullable=False, index=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    role = Column(String(16), nullable=False)
    text = Column(Text, nullable=False)
    buttons = Column(JSON)
    agent_name = Column(String(64))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    delivered = Column(Boolean, nullable=False, default=True, index=True)


class AuditEntry(Base):
    """Who did what in the console (claim, reply, close, transfer, sign-in)."""

    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True, autoincrement=True)
    agent_name = Column(String(64))
    action = Column(String(32), nullable=False)
    ticket_number = Column(String(32))
    detail = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class ServiceNotice(Base):
    """An incident or maintenance notice support staff publish (migration 0003).

    `topic` NULL means every topic. Active while starts_at <= now < until and not cleared.
    """

    __tablename__ = "service_notices"
    __table_args__ = (Index("ix_service_notices_active", "cleared_at", "until"),)

    id = Column(Integer, primary_key=True, autoincrement=True)
    topic = Column(String(64))
    text = Column(Text, nullable=False)
    starts_at = Column(DateTime, nullable=False, default=utcnow)
    until = Column(DateTime, nullable=False)
    created_by = Column(String(64))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    cleared_at = Column(DateTime)
    cleared_by = Column(String(64))


class FaqChange(Base):
    """One versioned change to the staff-edited FAQ files (migration 0004).

    `files` maps each changed path (relative to the project root) to {"before": text or null,
    "after": text}; rolling back restores the "before" texts as a new change.
    """

    __tablename__ = "faq_changes"

    id = Column(Integer, primary_key=True, autoincrement=True)
    author = Column(String(64), nullable=False)
    action = Column(String(32), nullable=False)
    summary = Column(Text, nullable=False)
    files = Column(JSON, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    rolled_back_by = Column(Integer)
