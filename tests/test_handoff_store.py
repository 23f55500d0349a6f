"""The ticket store on SQLite and on the real PostgreSQL of this machine."""
import uuid

import pytest

from bot.handoff.context import recent_user_messages
from bot.handoff.store import HandoffRequest, TicketStore
from tests.conftest import POSTGRES_URL, postgres_available


def _request(conversation, reason="low_confidence", messages=("退款没到账",)):
    return HandoffRequest(conversation, "rest", reason, "refund", 0.41, list(messages))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, sqlite_url):
    if request.param == "sqlite":
        return TicketStore(sqlite_url)
    if not postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (make test expects it)")
    return TicketStore(POSTGRES_URL)


def test_open_ticket_keeps_context(store):
    conversation = f"c-{uuid.uuid4()}"
    ticket, created = store.open_ticket(_request(conversation, messages=("在吗", "退款没到账")))
    assert created
    assert ticket["number"].startswith("T") and ticket["status"] == "open"
    assert ticket["recent_messages"] == ["在吗", "退款没到账"]
    assert (ticket["channel"], ticket["reason"], ticket["intent"]) == ("rest", "low_confidence", "refund")
    assert store.find(ticket["number"])["conversation_id"] == conversation


def test_one_open_ticket_per_conversation(store):
    conversation = f"c-{uuid.uuid4()}"
    first, _ = store.open_ticket(_request(conversation))
    again, created = store.open_ticket(_request(conversation, reason="contact_human"))
    assert not created and again["number"] == first["number"]
    other, created = store.open_ticket(_request(f"c-{uuid.uuid4()}"))
    assert created and other["number"] != first["number"]


def test_unknown_reason_is_refused(store):
    with pytest.raises(ValueError):
        store.open_ticket(_request("c", reason="because"))


def test_recent_user_messages_from_tracker_events():
    events = [
        {"event": "user", "text": "你好"},
        {"event": "bot", "text": "您好"},
        {"event": "user", "text": "  "},
        {"event": "user", "text": "退款"},
        {"event": "user", "text": "还没到"},
    ]
    assert recent_user_messages(events, 2) == ["退款", "还没到"]
    assert recent_user_messages(events, 0) == []
