"""Support agents: accounts with bcrypt-hashed passwords and expiring console sessions.

Sign-in costs the same for every name: an unknown (or disabled) name is checked against a dummy
hash of the same bcrypt cost as real ones, so the time of a wrong answer does not say whether the
name exists (issue 16, finding 6: real names took ~500 ms, unknown ones ~18 ms).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import lru_cache
from typing import Any, Dict, List, Optional

import bcrypt
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.db.engine import engine_for
from bot.db.models import Agent, AgentSession, utcnow

MIN_PASSWORD_CHARS = 8
BCRYPT_ROUNDS = 12
"""The cost of every password hash (bcrypt's default): real ones and the dummy one alike."""


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


@lru_cache(maxsize=1)
def _dummy_hash() -> bytes:
    """A hash nobody's password matches, made once per process with the real cost."""
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(BCRYPT_ROUNDS))


def _storable(text: object) -> bool:
    """A string the database can compare (no lone surrogate, no NUL)."""
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _password_bytes(password: object) -> bytes:
    """What bcrypt compares; never raises (a lone surrogate or a non-string is simply wrong)."""
    return password.encode("utf-8", "surrogatepass") if isinstance(password, str) else b""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def agent_dict(a: Agent) -> Dict[str, Any]:
    return {"id": a.id, "name": a.name, "active": a.active}


class AgentStore:
    def __init__(self, url: str) -> None:
        self._session = sessionmaker(engine_for(url), expire_on_commit=False, future=True)

    def add(self, name: str, password: str) -> Dict[str, Any]:
        name = (name or "").strip()
        if not name or len(name) > 64:
            raise ValueError("agent name must be 1-64 characters")
        if len(password or "") < MIN_PASSWORD_CHARS:
            raise ValueError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
        hashed = _hash(password)
        try:
            with self._session.begin() as s:
                agent = Agent(name=name, password_hash=hashed)
                s.add(agent)
                s.flush()
                return agent_dict(agent)
        except IntegrityError:
            raise ValueError(f"agent '{name}' already exists") from None

    def set_password(self, name: str, password: str) -> None:
        if len(password or "") < MIN_PASSWORD_CHARS:
            raise ValueError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
        with self._session.begin() as s:
            agent = s.execute(select(Agent).where(Agent.name == name)).scalar_one_or_none()
            if agent is None:
                raise ValueError(f"no agent '{name}'")
            agent.password_hash = _hash(password)

    def list(self) -> List[Dict[str, Any]]:
        with self._session() as s:
            return [agent_dict(a) for a in s.execute(select(Agent).order_by(Agent.name)).scalars()]

    def verify(self, name: str, password: str) -> Optional[Dict[str, Any]]:
        """The agent when name and password match an active account; None otherwise, after one
        bcrypt check of the same cost whether or not the name exists."""
        agent = None
        if _storable(name):
            with self._session() as s:
                agent = s.execute(select(Agent).where(Agent.name == name, Agent.active.is_(True))).scalar_one_or_none()
        stored = agent.password_hash.encode() if agent is not None else _dummy_hash()
        try:
            matches = bcrypt.checkpw(_password_bytes(password), stored)
        except ValueError:  # a damaged stored hash: refuse like a wrong password
            matches = False
        return agent_dict(agent) if agent is not None and matches else None

    def warm_up(self) -> None:
        """Make the dummy hash now (a server calls this at start, not on the first unknown name)."""
        _dummy_hash()

    def start_session(self, agent_id: int, ttl_seconds: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._session.begin() as s:
            s.execute(delete(AgentSession).where(AgentSession.expires_at < utcnow()))
            s.add(AgentSession(token_hash=_token_hash(token), agent_id=agent_id,
                               expires_at=utcnow() + timedelta(seconds=ttl_seconds)))
        return token

    def session_agent(self, token: Optional[str]) -> Optional[Dict[str, Any]]:
        """The agent of a valid, unexpired session token."""
        if not token:
            return None
        with self._session() as s:
            row = s.execute(
                select(Agent).join(AgentSession, AgentSession.agent_id == Agent.id)
                .where(AgentSession.token_hash == _token_hash(token), AgentSession.expires_at > utcnow(),
                       Agent.active.is_(True))
            ).scalar_one_or_none()
            return agent_dict(row) if row else None

    def end_session(self, token: str) -> None:
        with self._session.begin() as s:
            s.execute(delete(AgentSession).where(AgentSession.token_hash == _token_hash(token)))

    def active_agents(self) -> int:
        """Agents with a live console session (the team working in parallel now)."""
        with self._session() as s:
            rows = s.execute(select(AgentSession.agent_id).where(AgentSession.expires_at > utcnow()).distinct())
            return len(rows.all())

    def by_name(self, name: str) -> Optional[Dict[str, Any]]:
        if not _storable(name):
            return None
        with self._session() as s:
            a = s.execute(select(Agent).where(Agent.name == name)).scalar_one_or_none()
            return agent_dict(a) if a else None


@lru_cache(maxsize=4)
def agent_store(url: str) -> AgentStore:
    return AgentStore(url)
