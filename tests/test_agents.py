import time
import uuid

import pytest

from bot.handoff.agents import AgentStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def agents(request, sqlite_url):
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    return AgentStore(url)


def test_password_is_hashed_and_verified(agents):
    name = f"小王-{uuid.uuid4().hex[:6]}"
    agents.add(name, "correct horse")
    assert agents.verify(name, "correct horse")["name"] == name
    assert agents.verify(name, "wrong password") is None
    assert agents.verify("nobody", "correct horse") is None
    with agents._session() as s:
        from bot.db.models import Agent

        stored = s.query(Agent).filter_by(name=name).one().password_hash
    assert "correct horse" not in stored and stored.startswith("$2")


def test_duplicate_and_weak_passwords_refused(agents):
    name = f"a-{uuid.uuid4().hex[:6]}"
    agents.add(name, "password123")
    with pytest.raises(ValueError):
        agents.add(name, "password123")
    with pytest.raises(ValueError):
        agents.add(f"b-{uuid.uuid4().hex[:6]}", "short")


def test_sessions_expire(agents):
    agent = agents.add(f"s-{uuid.uuid4().hex[:6]}", "password123")
    token = agents.start_session(agent["id"], ttl_seconds=1)
    assert agents.session_agent(token)["id"] == agent["id"]
    assert agents.session_agent("forged-token") is None and agents.session_agent(None) is None
    time.sleep(1.2)
    assert agents.session_agent(token) is None
    token = agents.start_session(agent["id"], ttl_seconds=60)
    agents.end_session(token)
    assert agents.session_agent(token) is None
