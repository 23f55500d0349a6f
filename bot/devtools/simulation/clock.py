"""Moving a simulated conversation's rows onto the simulated day (see bot/devtools/simulation/simulate.py).

Before every step of a conversation (a user message, a claim, a close) the conversation marks
the pair (real time now, simulated time). Each row the step wrote is afterwards shifted by its
step's offset: tracker events (column and JSON `timestamp`), the ticket's created/claimed/closed
times, ticket messages and audit entries. Nothing in Rasa is patched.
"""
from __future__ import annotations

import json
import time
from bisect import bisect_right
from datetime import datetime, timezone
from typing import List, Optional

import sqlalchemy as sa

from bot.insights.sources import EVENTS


class SimClock:
    """(real, simulated) time pairs of one conversation, marked before each of its steps."""

    def __init__(self) -> None:
        self.real: List[float] = []
        self.sim: List[float] = []

    def mark(self, when: datetime) -> None:
        now = time.time()
        if self.real and now <= self.real[-1]:
            now = self.real[-1] + 1e-6
        self.real.append(now)
        self.sim.append(when.timestamp())

    def map(self, real: float) -> float:
        i = max(0, bisect_right(self.real, real) - 1)
        return self.sim[i] + (real - self.real[i])

    def map_naive_utc(self, value: Optional[datetime]) -> Optional[datetime]:
        if value is None:
            return None
        moved = self.map(value.replace(tzinfo=timezone.utc).timestamp())
        return datetime.fromtimestamp(moved, timezone.utc).replace(tzinfo=None)


def rewrite_times(tracker: sa.engine.Engine, handoff: sa.engine.Engine, sender: str, clock: SimClock) -> None:
    """Move every row this conversation wrote onto the simulated day (see the module docstring)."""
    from bot.db.models import AuditEntry, Ticket, TicketMessage

    if not clock.real:
        return
    with tracker.begin() as conn:
        rows = conn.execute(sa.select(EVENTS.c.id, EVENTS.c.timestamp, EVENTS.c.data)
                            .where(EVENTS.c.sender_id == sender)).all()
        updates = []
        for row_id, stamp, data in rows:
            moved = clock.map(float(stamp or 0.0))
            body = json.loads(data or "{}")
            body["timestamp"] = moved
            updates.append({"row_id": row_id, "moved": moved, "body": json.dumps(body)})
        if updates:
            conn.execute(EVENTS.update().where(EVENTS.c.id == sa.bindparam("row_id"))
                         .values(timestamp=sa.bindparam("moved"), data=sa.bindparam("body")), updates)
    tickets, messages, audit = Ticket.__table__, TicketMessage.__table__, AuditEntry.__table__
    with handoff.begin() as conn:
        numbers = []
        for t in conn.execute(sa.select(tickets).where(tickets.c.conversation_id == sender)).all():
            numbers.append(t.number)
            conn.execute(tickets.update().where(tickets.c.id == t.id).values(
                created_at=clock.map_naive_utc(t.created_at), claimed_at=clock.map_naive_utc(t.claimed_at),
                closed_at=clock.map_naive_utc(t.closed_at)))
        for m in conn.execute(sa.select(messages.c.id, messages.c.created_at)
                              .where(messages.c.conversation_id == sender)).all():
            conn.execute(messages.update().where(messages.c.id == m.id).values(created_at=clock.map_naive_utc(m.created_at)))
        if numbers:
            for a in conn.execute(sa.select(audit.c.id, audit.c.created_at).where(audit.c.ticket_number.in_(numbers))).all():
                conn.execute(audit.update().where(audit.c.id == a.id).values(created_at=clock.map_naive_utc(a.created_at)))
